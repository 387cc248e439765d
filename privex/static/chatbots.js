// The chatbot builder's own behaviours (htmx swaps the steps; app.js copies and opens dialogs):
// - the preview chat ([data-preview]): a question is POSTed as JSON with the page's CSRF token to the preview
//   endpoint, whose server-sent events (delta, citations, done, error) are read with a ReadableStream reader and
//   written into a role="log" region as they come; the test conversation carries on until "Start over";
// - after htmx swaps a step in, the focus goes where to read next: the first refused field, else the "Saved."
//   message, else the step's heading — so a keyboard or screen reader user is not left on a removed element.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  /** Read server-sent events from a fetch response: onEvent(name, data) for each frame whose data is JSON. */
  async function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
      var cut;
      while ((cut = buffer.indexOf("\n\n")) !== -1) {
        var frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        var name = "message";
        var data = [];
        frame.split("\n").forEach(function (line) {
          if (line.indexOf("event:") === 0) name = line.slice(6).trim();
          else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
        });
        if (!data.length) continue;
        var parsed;
        try { parsed = JSON.parse(data.join("\n")); } catch (error) { continue; }  // not ours: skip it
        onEvent(name, parsed);
      }
    }
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;  // answers are untrusted text: never parsed as HTML
    return node;
  }

  // The preview's state lives here, keyed by its endpoint: the listeners are delegated from the document, so the
  // preview keeps working whatever htmx swaps or restores from its history.
  var conversations = {};

  function previewOf(node) {
    var root = node && node.closest ? node.closest("[data-preview]") : null;
    if (!root) return null;
    var url = root.getAttribute("data-preview");
    var state = conversations[url] || (conversations[url] = { sessionId: null, busy: false });
    return {
      state: state,
      url: url,
      log: root.querySelector("[data-preview-log]"),
      box: root.querySelector("[data-preview-form] textarea"),
      ask: root.querySelector('[data-preview-form] button[type="submit"]'),
      status: root.querySelector("[data-preview-status]")
    };
  }

  function addMessage(preview, role, text) {
    var node = element("div", "chat-msg " + role);
    node.appendChild(element("span", "visually-hidden", role === "user" ? "You: " : role === "error" ? "Error: " : "Bot: "));
    var body = element("span", "text");
    body.appendChild(document.createTextNode(text || ""));
    node.appendChild(body);
    preview.log.appendChild(node);
    preview.log.scrollTop = preview.log.scrollHeight;
    return { node: node, text: body.firstChild };
  }

  function citationList(citations) {
    var list = element("ol", "citations");
    list.setAttribute("aria-label", "Sources");
    citations.forEach(function (citation, index) {
      var where = citation.position || {};
      var label = "[" + (citation.n || index + 1) + "] " + (citation.document_name || where.title || "Source");
      if (where.page) label += " — page " + where.page;
      if (where.heading) label += " — " + where.heading;
      list.appendChild(element("li", "", label));
    });
    return list;
  }

  async function send(preview, text) {
    var state = preview.state;
    state.busy = true;
    preview.ask.disabled = true;
    preview.log.setAttribute("aria-busy", "true");
    addMessage(preview, "user", text);
    var answer = addMessage(preview, "bot pending", "");
    var finished = false;
    var problem = null;
    preview.status.textContent = "The bot is answering…";
    try {
      var body = { message: text };
      if (state.sessionId) body.session_id = state.sessionId;
      var response = await fetch(preview.url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(body)
      });
      if ((response.headers.get("Content-Type") || "").indexOf("text/event-stream") === -1) {
        problem = response.status === 400 ? "This page has expired: reload it, then ask again."
          : response.status === 401 ? "You were signed out: sign in again, then ask again."
          : "The preview could not answer (error " + response.status + ").";
      } else {
        await readEvents(response, function (name, data) {
          if (name === "delta") {
            answer.text.appendData(data.text || "");
            preview.log.scrollTop = preview.log.scrollHeight;
          } else if (name === "citations") {
            if (data.citations && data.citations.length) answer.node.appendChild(citationList(data.citations));
          } else if (name === "done") {
            finished = true;
            state.sessionId = data.session_id || state.sessionId;
          } else if (name === "error") {
            problem = data.message || "The answer could not be completed.";
            if (data.code === 404) state.sessionId = null;  // the test conversation is gone: the next starts anew
          }
        });
        if (!finished && !problem) problem = "The connection closed before the answer was complete. Try again.";
      }
    } catch (error) {
      problem = "The preview could not be reached. Check your connection, then try again.";
    }
    answer.node.classList.remove("pending");
    if (problem) {
      if (!answer.text.data) answer.node.remove();
      addMessage(preview, "error", problem.charAt(0).toUpperCase() + problem.slice(1));
    }
    state.busy = false;
    preview.ask.disabled = false;
    preview.log.setAttribute("aria-busy", "false");
    preview.status.textContent = problem ? "The bot could not answer." : "The bot answered.";
  }

  document.addEventListener("submit", function (event) {
    if (!event.target.matches("[data-preview-form]")) return;
    event.preventDefault();
    var preview = previewOf(event.target);
    var text = preview.box.value.trim();
    if (!text || preview.state.busy) { preview.box.focus(); return; }
    preview.box.value = "";
    send(preview, text);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    if (!event.target.matches("[data-preview-form] textarea")) return;
    event.preventDefault();
    event.target.form.requestSubmit();
  });
  document.addEventListener("click", function (event) {
    var restart = event.target.closest("[data-preview-restart]");
    if (!restart) return;
    var preview = previewOf(restart);
    preview.state.sessionId = null;
    Array.prototype.slice.call(preview.log.querySelectorAll(".chat-msg:not(.welcome)")).forEach(function (node) {
      node.remove();
    });
    preview.status.textContent = "A new test conversation starts with your next question.";
    preview.box.focus();
  });

  function focusAfterSwap() {
    var main = document.getElementById("builder-main");
    if (!main) return;
    var target = main.querySelector('[aria-invalid="true"]') || main.querySelector("[data-saved]") ||
      document.getElementById("step-title");
    if (target) target.focus();
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    var swapped = event.detail && event.detail.elt;
    if (swapped && swapped.id === "builder-main") focusAfterSwap();
  });
})();
