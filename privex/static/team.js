// The Team pages' one behaviour beyond app.js: after htmx swaps in another page of a list (a credential's audit
// log), keyboard focus stays in it. htmx gives the focus back to an element with the same id as the one that had
// it (the pagination's links keep theirs); when that link is gone (the last page has no "Next"), the list's heading
// ([data-keeps-focus], tabindex=-1) takes it instead of the page's top.
(function () {
  "use strict";
  document.addEventListener("htmx:afterSettle", function () {
    if (document.activeElement && document.activeElement !== document.body) return;
    var heading = document.querySelector("[data-keeps-focus]");
    if (heading) heading.focus();
  });
})();
