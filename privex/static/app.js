// The builder's own small behaviours, each working without a library (htmx does the partial updates):
// - [data-opens=ID] / [data-closes=ID] open and close a <dialog> (forms.confirm), where the browser does not
//   already do it through `commandfor` / `command` (invoker commands);
// - [data-copy=ID] copies the text of element ID to the clipboard and says so in [data-copied-for=ID];
// - the first field marked aria-invalid gets the focus, so a form re-shown with errors starts where to fix it.
(function () {
  "use strict";
  var nativeCommands = "command" in HTMLButtonElement.prototype;

  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-opens]");
    if (opener && !nativeCommands) {
      var dialog = document.getElementById(opener.dataset.opens);
      if (dialog && !dialog.open) dialog.showModal();
    }
    var closer = event.target.closest("[data-closes]");
    if (closer && !nativeCommands) {
      var open = document.getElementById(closer.dataset.closes);
      if (open && open.open) open.close();
    }
    var copier = event.target.closest("[data-copy]");
    if (copier) copy(copier.dataset.copy);
  });

  function copy(id) {
    var source = document.getElementById(id);
    var said = document.querySelector('[data-copied-for="' + id + '"]');
    if (!source) return;
    var text = "value" in source ? source.value : source.textContent;
    navigator.clipboard.writeText(text.trim()).then(function () {
      if (said) said.textContent = "Copied.";
    }, function () {
      if (said) said.textContent = "Could not copy: select the text and copy it yourself.";
    });
  }

  function focusFirstError(root) {
    if (!root || !root.querySelector) return;  // htmx restoring a page from its history names no target
    var invalid = root.querySelector('[aria-invalid="true"]');
    if (invalid) invalid.focus();
  }

  document.addEventListener("DOMContentLoaded", function () { focusFirstError(document); });
  document.addEventListener("htmx:afterSwap", function (event) { focusFirstError(event.detail.target); });
})();
