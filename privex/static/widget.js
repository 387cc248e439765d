/*! PrivexBot chat widget. Embed with:
 *   <script src="https://YOUR-PRIVEXBOT/widget.js" data-bot="bot_..." async></script>
 * Optional: data-api="https://..." (the API origin; default: this script's own origin).
 *
 * Plain ES2018, no dependencies, no build step. Everything lives in this closure and in a shadow root, so the host
 * page's CSS cannot restyle the widget and the widget's CSS cannot reach the page. Every text that comes from the
 * server (bot answers included) is untrusted: it is written with textContent only, never parsed as HTML.
 */
(function () {
  "use strict";

  var script = document.currentScript ||
    document.querySelector('script[data-bot][src*="widget.js"]:not([data-privex-loaded])');
  if (!script || script.hasAttribute("data-privex-loaded")) return;
  script.setAttribute("data-privex-loaded", "");

  var BOT = (script.getAttribute("data-bot") || "").trim();
  var API = ((script.getAttribute("data-api") || new URL(script.src, location.href).origin)).replace(/\/+$/, "");
  var BOT_URL = API + "/api/v1/public/bots/" + encodeURIComponent(BOT);
  var SESSION_KEY = "privex:session:" + BOT;
  var LEAD_KEY = "privex:lead:" + BOT;
  var DEFAULT_COLOR = "#2457c5";
  var MAX_MESSAGE = 4000;

  // ---- small helpers -------------------------------------------------------------------------------------------

  /** Build an element: h("button", {class: "x", "aria-label": "y", onclick: fn}, [children or strings]). */
  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === undefined || value === null || value === false) return;
      if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), value);
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  /** An inline SVG icon from path data (built node by node: no markup parsing anywhere). */
  function icon(d) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "24");
    svg.setAttribute("height", "24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", d);
    path.setAttribute("fill", "currentColor");
    svg.appendChild(path);
    return svg;
  }

  var ICONS = {
    chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z",
    close: "M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12 2.9 5.7 4.3 4.3l6.3 6.3 6.3-6.3z",
    send: "M2 21l21-9L2 3v7l15 2-15 2z",
    up: "M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.4-1.1L13.2 1 6.6 7.6C6.2 8 6 8.5 6 9v10a2 " +
        "2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7v-2z",
    down: "M22 3h-4v12h4V3zM2 14a2 2 0 0 0 2 2h6.3l-1 4.6v.3c0 .4.2.8.4 1.1l1.1 1L17.4 16.4c.4-.4.6-.9.6-1.4V5a2 " +
          "2 0 0 0-2-2H7c-.8 0-1.5.5-1.8 1.2l-3 7.1c-.1.2-.2.5-.2.7v2z"
  };

  function storageGet(key) {
    try { return window.sessionStorage.getItem(key); } catch (e) { return null; }  // blocked storage: no memory
  }
  function storageSet(key, value) {
    try {
      if (value === null) window.sessionStorage.removeItem(key);
      else window.sessionStorage.setItem(key, value);
    } catch (e) { /* blocked storage: the conversation just does not survive a reload */ }
  }

  /** Only http(s) links from the server become hrefs (never javascript: or data:). */
  function safeUrl(value) {
    try {
      var url = new URL(String(value), location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) { return null; }
  }

  function safeColor(value) {
    return typeof value === "string" && window.CSS && CSS.supports && CSS.supports("color", value) ? value
      : DEFAULT_COLOR;
  }

  /** Black or white text, whichever reads better on a #rgb / #rrggbb background. */
  function textOn(color) {
    var m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(color);
    if (!m) return "#ffffff";
    var hex = m[1].length === 3 ? m[1].replace(/./g, "$&$&") : m[1];
    var rgb = [0, 2, 4].map(function (i) {
      var c = parseInt(hex.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var luminance = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
    return luminance > 0.4 ? "#111827" : "#ffffff";
  }

  /** An error the visitor can read, from an HTTP answer (its JSON `message` when there is one). */
  function ApiError(status, message, body) {
    this.status = status;
    this.message = message;
    this.body = body || {};
  }

  function describe(status, body, retryAfter) {
    var server = body && typeof body.message === "string" ? body.message : "";
    if (status === 403) return server || "This site may not use this chatbot.";
    if (status === 404) return "This chatbot is not available right now.";
    if (status === 429) {
      return "Too many messages at once. Please wait " + (retryAfter ? retryAfter + " seconds" : "a moment") +
        " and try again.";
    }
    if (status >= 500) return "Something went wrong on the chat service. Please try again in a moment.";
    return server || "The chat service answered with an error (" + status + ").";
  }

  var UNREACHABLE = "The chat service could not be reached. Check your connection; if it persists, this site may " +
    "not be allowed to use this chatbot.";

  /** fetch, with every failure turned into an ApiError whose message is readable. */
  async function request(path, options) {
    var response;
    try {
      response = await fetch(BOT_URL + path, Object.assign({ credentials: "omit", mode: "cors" }, options || {}));
    } catch (e) {
      throw new ApiError(0, UNREACHABLE);  // network down, or a CORS refusal the browser hides from us
    }
    if (response.ok) return response;
    var body = {};
    try { body = await response.json(); } catch (e) { /* not JSON: describe by status */ }
    throw new ApiError(response.status, describe(response.status, body, response.headers.get("Retry-After")), body);
  }

  async function postJson(path, payload, extraHeaders) {
    var response = await request(path, {
      method: "POST",
      headers: Object.assign({ "Content-Type": "application/json", Accept: "application/json" }, extraHeaders || {}),
      body: JSON.stringify(payload)
    });
    return response.status === 204 ? {} : response.json();
  }

  /** Read a text/event-stream body, calling onEvent(name, data) per event; resolves when the stream ends. */
  async function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function dispatch(block) {
      var name = "message";
      var data = [];
      block.split(/\r\n|\r|\n/).forEach(function (line) {
        if (!line || line.charAt(0) === ":") return;
        var colon = line.indexOf(":");
        var field = colon === -1 ? line : line.slice(0, colon);
        var value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
      });
      if (!data.length) return;
      var parsed;
      try { parsed = JSON.parse(data.join("\n")); } catch (e) { parsed = { text: data.join("\n") }; }
      onEvent(name, parsed);
    }
    for (;;) {
      var chunk = await reader.read();
      buffer += decoder.decode(chunk.value || new Uint8Array(0), { stream: !chunk.done });
      var parts = buffer.split(/\r\n\r\n|\n\n|\r\r/);
      buffer = parts.pop();
      parts.forEach(dispatch);
      if (chunk.done) break;
    }
    if (buffer.trim()) dispatch(buffer);
  }

  // ---- styles (scoped to the shadow root) ------------------------------------------------------------------------

  var CSS_TEXT = [
    // The host is in the page: reset everything the page could set on it (inner !important beats the page's).
    ":host { all: initial !important; display: block !important; position: static !important; }",
    "[hidden] { display: none !important; }",
    ".root { all: initial; --pw-color: " + DEFAULT_COLOR + "; --pw-on-color: #fff;",
    "  font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif;",
    "  color: #1f2933; -webkit-font-smoothing: antialiased; }",
    ".root *, .root *::before, .root *::after { box-sizing: border-box; font: inherit; color: inherit;",
    "  letter-spacing: normal; text-transform: none; text-align: start; margin: 0; }",
    "button { cursor: pointer; border: 0; background: none; padding: 0; display: inline-flex;",
    "  align-items: center; justify-content: center; }",
    "button:focus-visible, textarea:focus-visible, input:focus-visible, a:focus-visible {",
    "  outline: 3px solid var(--pw-color); outline-offset: 2px; }",
    "button:disabled { cursor: default; opacity: .55; }",
    ".bubble { position: fixed; bottom: 20px; right: 20px; z-index: 2147483000; width: 56px; height: 56px;",
    "  border-radius: 50%; background: var(--pw-color); color: var(--pw-on-color);",
    "  box-shadow: 0 6px 20px rgba(0,0,0,.25); transition: transform .15s ease; }",
    ".bubble:hover { transform: scale(1.06); }",
    ".root[data-position=left] .bubble { right: auto; left: 20px; }",
    ".panel { position: fixed; bottom: 88px; right: 20px; z-index: 2147483000; width: 370px;",
    "  max-width: calc(100vw - 40px); height: 560px; max-height: calc(100vh - 110px); display: flex;",
    "  flex-direction: column; background: #fff; border-radius: 14px; overflow: hidden;",
    "  box-shadow: 0 12px 40px rgba(0,0,0,.25); animation: pw-in .18s ease-out; }",
    ".root[data-position=left] .panel { right: auto; left: 20px; }",
    "@keyframes pw-in { from { opacity: 0; transform: translateY(12px); } to { opacity: 1; transform: none; } }",
    ".header { display: flex; align-items: center; gap: 10px; padding: 12px 14px; background: var(--pw-color);",
    "  color: var(--pw-on-color); }",
    ".avatar { width: 28px; height: 28px; border-radius: 50%; object-fit: cover; background: #fff; }",
    ".title { flex: 1; font-size: 16px; font-weight: 600; overflow: hidden; text-overflow: ellipsis;",
    "  white-space: nowrap; }",
    ".close { width: 32px; height: 32px; border-radius: 8px; color: var(--pw-on-color); }",
    ".close svg { width: 20px; height: 20px; }",
    ".log { flex: 1; overflow-y: auto; padding: 14px; display: flex; flex-direction: column; gap: 10px;",
    "  background: #f5f7fa; }",
    ".msg { max-width: 88%; padding: 9px 12px; border-radius: 12px; white-space: pre-wrap;",
    "  overflow-wrap: anywhere; }",
    ".msg.user { align-self: flex-end; background: var(--pw-color); color: var(--pw-on-color);",
    "  border-bottom-right-radius: 4px; }",
    ".msg.assistant { align-self: flex-start; background: #fff; border: 1px solid #e4e7eb;",
    "  border-bottom-left-radius: 4px; }",
    ".msg.error { align-self: stretch; max-width: none; background: #fef3f2; color: #b42318;",
    "  border: 1px solid #fecdca; }",
    ".msg.pending .text:empty::after { content: '\\2026'; opacity: .6; }",
    ".citations { list-style: none; padding: 8px 0 0; margin-top: 8px; border-top: 1px solid #e4e7eb;",
    "  font-size: 12px; color: #52606d; white-space: normal; display: grid; gap: 2px; }",
    ".citations a { color: #1f4fb5; text-decoration: underline; }",
    ".feedback { display: flex; gap: 4px; margin-top: 6px; }",
    ".feedback button { width: 28px; height: 28px; border-radius: 6px; color: #7b8794; }",
    ".feedback button svg { width: 16px; height: 16px; }",
    ".feedback button:hover { color: #1f2933; background: #eef2f7; }",
    ".feedback button[aria-pressed=true] { color: #1f2933; background: #e4e7eb; }",
    ".composer { display: flex; gap: 8px; align-items: flex-end; padding: 10px; border-top: 1px solid #e4e7eb;",
    "  background: #fff; }",
    "textarea, input[type=text], input[type=email], input[type=tel] { display: block; width: 100%;",
    "  border: 1px solid #cbd2d9; border-radius: 8px; padding: 8px 10px; background: #fff; color: #1f2933; }",
    "textarea { flex: 1; resize: none; height: 40px; max-height: 120px; }",
    ".send { width: 40px; height: 40px; border-radius: 8px; background: var(--pw-color);",
    "  color: var(--pw-on-color); flex: none; }",
    ".send svg { width: 20px; height: 20px; }",
    ".lead { display: grid; gap: 10px; padding: 14px; border-top: 1px solid #e4e7eb; background: #fff;",
    "  overflow-y: auto; max-height: 65%; }",
    ".lead-intro { font-weight: 600; }",
    ".field { display: grid; gap: 4px; }",
    ".field label { font-size: 13px; font-weight: 600; }",
    ".consent { display: flex; gap: 8px; align-items: flex-start; font-size: 12px; }",
    ".consent input { margin-top: 2px; accent-color: var(--pw-color); }",
    "[aria-invalid=true] { border-color: #b42318 !important; }",
    ".field-error { color: #b42318; font-size: 12px; }",
    ".lead-submit { height: 38px; border-radius: 8px; background: var(--pw-color); color: var(--pw-on-color);",
    "  font-weight: 600; padding: 0 14px; }",
    ".sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);",
    "  white-space: nowrap; }",
    "@media (prefers-reduced-motion: reduce) { .root *, .root *::before, .root *::after {",
    "  animation: none !important; transition: none !important; } }"
  ].join("\n");

  // ---- the widget ------------------------------------------------------------------------------------------------

  var state = {
    config: null,
    configError: null,
    sessionId: storageGet(SESSION_KEY),
    leadDone: storageGet(LEAD_KEY) === "1",
    busy: false,
    pending: null  // a message waiting for the lead form
  };

  var host = h("privex-chat", { "data-bot": BOT });
  var shadow = host.attachShadow({ mode: "open" });
  shadow.appendChild(h("style", { text: CSS_TEXT }));

  var ui = {};
  ui.bubble = h("button", { type: "button", class: "bubble", "aria-label": "Open chat", "aria-expanded": "false",
                            "aria-controls": "panel", onclick: toggle }, [icon(ICONS.chat)]);
  ui.title = h("h2", { class: "title", id: "title", text: "Chat" });
  ui.avatar = h("img", { class: "avatar", alt: "", hidden: true });
  ui.close = h("button", { type: "button", class: "close", "aria-label": "Close chat", onclick: close },
               [icon(ICONS.close)]);
  ui.log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions text",
                      "aria-label": "Conversation" });
  ui.input = h("textarea", { rows: "1", maxlength: String(MAX_MESSAGE), "aria-label": "Your message",
                             placeholder: "Type your message…", onkeydown: onInputKey, oninput: fitInput });
  ui.send = h("button", { type: "submit", class: "send", "aria-label": "Send message" }, [icon(ICONS.send)]);
  ui.composer = h("form", { class: "composer", onsubmit: function (event) { event.preventDefault(); submit(); } },
                  [ui.input, ui.send]);
  ui.lead = h("form", { class: "lead", novalidate: true, hidden: true, "aria-label": "Your contact details",
                        onsubmit: onLeadSubmit });
  ui.panel = h("section", { class: "panel", id: "panel", role: "dialog", "aria-labelledby": "title", hidden: true },
               [h("div", { class: "header" }, [ui.avatar, ui.title, ui.close]), ui.log, ui.lead, ui.composer]);
  ui.root = h("div", { class: "root", "data-position": "right", onkeydown: onKey }, [ui.panel, ui.bubble]);
  shadow.appendChild(ui.root);

  function mount() { (document.body || document.documentElement).appendChild(host); }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);

  var configLoad = loadConfig();

  async function loadConfig() {
    if (!BOT) {
      state.configError = "This chat is not set up: the script tag has no data-bot attribute.";
      return;
    }
    try {
      var response = await request("", { headers: { Accept: "application/json" } });
      applyConfig(await response.json());
      state.configError = null;
    } catch (error) {
      state.configError = error.message || UNREACHABLE;
    }
  }

  function applyConfig(config) {
    state.config = config;
    var look = config.appearance || {};
    var color = safeColor(look.color);
    ui.root.style.setProperty("--pw-color", color);
    ui.root.style.setProperty("--pw-on-color", textOn(color));
    ui.root.setAttribute("data-position", look.position === "left" ? "left" : "right");
    ui.title.textContent = look.title || config.name || "Chat";
    ui.bubble.setAttribute("aria-label", "Open chat: " + ui.title.textContent);
    if (look.placeholder) ui.input.setAttribute("placeholder", look.placeholder);
    var avatar = look.avatar_url ? safeUrl(look.avatar_url) : null;
    if (avatar) { ui.avatar.src = avatar; ui.avatar.hidden = false; }
  }

  function leadCapture() {
    var lead = state.config && state.config.lead_capture;
    return lead && lead.enabled ? lead : null;
  }

  // ---- opening and closing ---------------------------------------------------------------------------------------

  var greeted = false;

  async function open() {
    ui.panel.hidden = false;
    ui.bubble.setAttribute("aria-expanded", "true");
    ui.bubble.setAttribute("aria-label", "Close chat");
    ui.input.focus();
    if (state.configError || !state.config) {
      configLoad = state.configError ? loadConfig() : configLoad;  // a failed load is retried at each opening
      await configLoad;
    }
    if (ui.panel.hidden) return;
    if (state.configError) {
      showError(state.configError);
      setBusy(false);
      return;
    }
    if (!greeted) {
      greeted = true;
      if (state.config.welcome_message) addMessage("assistant", state.config.welcome_message);
    }
    var lead = leadCapture();
    if (lead && lead.when === "before" && !state.leadDone) showLeadForm();
    else if (ui.lead.hidden) ui.input.focus();
  }

  function close() {
    if (ui.panel.hidden) return;
    ui.panel.hidden = true;
    ui.bubble.setAttribute("aria-expanded", "false");
    ui.bubble.setAttribute("aria-label", "Open chat" + (state.config ? ": " + ui.title.textContent : ""));
    ui.bubble.focus();
  }

  function toggle() { if (ui.panel.hidden) open(); else close(); }

  function onKey(event) {
    if (event.key === "Escape" && !ui.panel.hidden) { event.preventDefault(); event.stopPropagation(); close(); }
  }

  /** The textarea grows with its text, up to its max-height (then it scrolls). */
  function fitInput() {
    ui.input.style.height = "";
    if (ui.input.scrollHeight > ui.input.clientHeight) ui.input.style.height = ui.input.scrollHeight + 2 + "px";
  }

  function onInputKey(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); submit(); }
  }

  // ---- the conversation ------------------------------------------------------------------------------------------

  function scrollDown() { ui.log.scrollTop = ui.log.scrollHeight; }

  function addMessage(role, text) {
    var body = h("div", { class: "text" });
    body.appendChild(document.createTextNode(text || ""));
    var node = h("div", { class: "msg " + role }, [
      h("span", { class: "sr-only", text: role === "user" ? "You: " : role === "error" ? "Error: " : "Bot: " }),
      body
    ]);
    ui.log.appendChild(node);
    scrollDown();
    return { node: node, text: body.firstChild };
  }

  function showError(message) { addMessage("error", message); }

  function setBusy(busy) {
    state.busy = busy;
    ui.send.disabled = busy || Boolean(state.configError);
    ui.log.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function submit() {
    if (state.busy) return;
    var text = ui.input.value.trim();
    if (!text) return;
    if (!state.config) { if (state.configError) showError(state.configError); return; }
    var lead = leadCapture();
    if (lead && lead.when === "before" && !state.leadDone) {
      state.pending = text;
      ui.input.value = "";
      fitInput();
      addMessage("user", text);
      showLeadForm();
      return;
    }
    ui.input.value = "";
    fitInput();
    addMessage("user", text);
    send(text);
  }

  async function ensureSession() {
    if (state.sessionId) return state.sessionId;
    // No page URL or visitor details: the server already knows the site from the Origin header.
    var body = await postJson("/sessions", {});
    state.sessionId = body.session_id;
    storageSet(SESSION_KEY, state.sessionId);
    return state.sessionId;
  }

  function forgetSession() {
    state.sessionId = null;
    state.leadDone = false;
    storageSet(SESSION_KEY, null);
    storageSet(LEAD_KEY, null);
  }

  /** Send one message and stream its answer. Retries once with a new session when the stored one is gone. */
  async function send(text, retried) {
    setBusy(true);
    var answer = null;
    try {
      var reused = Boolean(state.sessionId);
      await ensureSession();
      var response;
      try {
        response = await request("/sessions/" + encodeURIComponent(state.sessionId) + "/messages", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
          body: JSON.stringify({ message: text, stream: true })
        });
      } catch (error) {
        if (error.status === 428) {  // the bot wants the visitor's details first
          state.leadDone = false;
          storageSet(LEAD_KEY, null);
          state.pending = text;
          showLeadForm();
          return;
        }
        if (error.status === 404 && reused && !retried) {  // the stored session expired or was deleted
          forgetSession();
          await send(text, true);
          return;
        }
        throw error;
      }
      answer = addAnswer();
      if ((response.headers.get("Content-Type") || "").indexOf("text/event-stream") === -1) {
        var whole = await response.json();  // a server that ignores stream: one JSON answer
        answer.append(whole.answer || "");
        answer.finish(whole.message_id, whole.citations);
        return;
      }
      var finished = false;
      var citations = null;
      await readEvents(response, function (name, data) {
        if (name === "delta") answer.append(data.text || "");
        else if (name === "citations") citations = data.citations || [];
        else if (name === "done") { finished = true; answer.finish(data.message_id, citations); }
        else if (name === "error") {
          finished = true;
          answer.fail();
          showError(data.message || "The answer could not be completed.");
        }
      });
      if (!finished) {
        answer.fail();
        showError("The connection closed before the answer was complete. Please try again.");
      }
    } catch (error) {
      if (answer) answer.fail();
      showError(error.message || UNREACHABLE);
    } finally {
      setBusy(false);
    }
  }

  /** An assistant message being streamed: append text as it arrives, then citations and feedback. */
  function addAnswer() {
    var message = addMessage("assistant", "");
    message.node.classList.add("pending");
    return {
      append: function (text) { message.text.appendData(text); scrollDown(); },
      fail: function () {
        message.node.classList.remove("pending");
        if (!message.text.data) message.node.remove();
      },
      finish: function (messageId, citations) {
        message.node.classList.remove("pending");
        if (state.config.citations && citations && citations.length) message.node.appendChild(citationList(citations));
        if (messageId) message.node.appendChild(feedbackButtons(messageId));
        scrollDown();
      }
    };
  }

  function citationList(citations) {
    var list = h("ol", { class: "citations", "aria-label": "Sources" });
    citations.forEach(function (citation, index) {
      var position = citation.position || {};
      var name = citation.document_name || position.title || "Source";
      var where = position.page ? "page " + position.page : position.heading ? position.heading : "";
      var url = position.source_url ? safeUrl(position.source_url) : null;
      var label = "[" + (citation.n || index + 1) + "] ";
      var item = h("li", {}, [label]);
      if (url) item.appendChild(h("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: name }));
      else item.appendChild(document.createTextNode(name));
      if (where && !url) item.appendChild(document.createTextNode(" — " + where));
      if (citation.text) item.setAttribute("title", String(citation.text).slice(0, 300));
      list.appendChild(item);
    });
    return list;
  }

  function feedbackButtons(messageId) {
    var buttons = [];
    function rate(rating, button) {
      return async function () {
        if (button.getAttribute("aria-pressed") === "true") return;
        try {
          await postJson("/messages/" + encodeURIComponent(messageId) + "/feedback", { rating: rating });
          buttons.forEach(function (other) { other.setAttribute("aria-pressed", String(other === button)); });
        } catch (error) {
          showError(error.message || UNREACHABLE);
        }
      };
    }
    var up = h("button", { type: "button", "aria-label": "Helpful answer", "aria-pressed": "false" },
               [icon(ICONS.up)]);
    var down = h("button", { type: "button", "aria-label": "Unhelpful answer", "aria-pressed": "false" },
                 [icon(ICONS.down)]);
    up.addEventListener("click", rate(1, up));
    down.addEventListener("click", rate(-1, down));
    buttons.push(up, down);
    return h("div", { class: "feedback", role: "group", "aria-label": "Rate this answer" }, buttons);
  }

  // ---- lead capture ----------------------------------------------------------------------------------------------

  var TOP_LEVEL_FIELDS = { email: true, name: true, phone: true };
  var EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;

  function showLeadForm() {
    var lead = leadCapture() || { fields: [{ name: "email", label: "Email", type: "email", required: true }] };
    var form = ui.lead;
    while (form.firstChild) form.removeChild(form.firstChild);
    form.appendChild(h("p", { class: "lead-intro", id: "lead-intro",
                              text: "Before we continue, please leave your contact details." }));
    (lead.fields || []).forEach(function (field, index) {
      var id = "lead-" + index;
      var type = { email: "email", tel: "tel" }[field.type] || "text";
      var input = h("input", {
        id: id, name: field.name, type: type, required: Boolean(field.required),
        autocomplete: { email: "email", name: "name", phone: "tel" }[field.name] || "on",
        "aria-describedby": id + "-error"
      });
      form.appendChild(h("div", { class: "field" }, [
        h("label", { for: id, text: (field.label || field.name) + (field.required ? " *" : "") }),
        input,
        h("span", { class: "field-error", id: id + "-error", "data-for": field.name, hidden: true })
      ]));
    });
    if (lead.consent_text) {
      form.appendChild(h("div", { class: "field" }, [
        h("label", { class: "consent" }, [
          h("input", { type: "checkbox", name: "consent", required: true, "aria-describedby": "lead-consent-error" }),
          h("span", { text: lead.consent_text })
        ]),
        h("span", { class: "field-error", id: "lead-consent-error", "data-for": "consent", hidden: true })
      ]));
    }
    form.appendChild(h("button", { type: "submit", class: "lead-submit", text: "Continue" }));
    form.hidden = false;
    ui.composer.hidden = true;
    var first = form.querySelector("input");
    if (first && !ui.panel.hidden) first.focus();
  }

  function fieldError(name, message) {
    var span = ui.lead.querySelector('.field-error[data-for="' + name + '"]');
    var input = ui.lead.querySelector('[name="' + name + '"]');
    if (span) { span.textContent = message || ""; span.hidden = !message; }
    if (input) input.setAttribute("aria-invalid", message ? "true" : "false");
    return input;
  }

  async function onLeadSubmit(event) {
    event.preventDefault();
    var form = ui.lead;
    var lead = leadCapture() || { fields: [] };
    var payload = { consent: false, custom_fields: {} };
    var firstInvalid = null;
    (lead.fields || []).forEach(function (field) {
      var input = form.querySelector('[name="' + field.name + '"]');
      var value = input ? input.value.trim() : "";
      var problem = "";
      if (field.required && !value) problem = (field.label || field.name) + " is required.";
      else if (value && field.type === "email" && !EMAIL.test(value)) problem = "Enter a valid email address.";
      var bad = fieldError(field.name, problem);
      if (problem && !firstInvalid) firstInvalid = bad;
      if (!value) return;
      if (TOP_LEVEL_FIELDS[field.name]) payload[field.name] = value;
      else payload.custom_fields[field.name] = value;
    });
    var consent = form.querySelector('[name="consent"]');
    if (consent) {
      payload.consent = consent.checked;
      var consentBad = fieldError("consent", consent.checked ? "" : "Please agree to continue.");
      if (!consent.checked && !firstInvalid) firstInvalid = consentBad;
    }
    if (firstInvalid) { firstInvalid.focus(); return; }

    var button = form.querySelector(".lead-submit");
    button.disabled = true;
    try {
      payload.session_id = await ensureSession();
      await postJson("/leads", payload);
    } catch (error) {
      button.disabled = false;
      var errors = (error.body && error.body.errors) || {};
      var named = Object.keys(errors).filter(function (name) { return form.querySelector('[name="' + name + '"]'); });
      named.forEach(function (name) {
        var messages = errors[name];
        fieldError(name, Array.isArray(messages) ? messages.join(" ") : String(messages));
      });
      if (named.length) form.querySelector('[name="' + named[0] + '"]').focus();
      else showError(error.message || UNREACHABLE);
      return;
    }
    state.leadDone = true;
    storageSet(LEAD_KEY, "1");
    form.hidden = true;
    ui.composer.hidden = false;
    ui.input.focus();
    var pending = state.pending;
    state.pending = null;
    if (pending) send(pending);
    else addMessage("assistant", "Thank you! How can we help?");
  }
})();
