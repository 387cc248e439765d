// The chatflow canvas (templates/chatflows/canvas.html). No library: the graph is a list of <li> nodes placed
// absolutely on a stage that scrolls and zooms inside its box, and an SVG of curves for the connections.
//
// The graph being edited lives here until it is saved; a refused save (422) keeps it and draws the store's problems
// on the nodes (red outline, a list at the top linking to each node, the messages beside the fields in the panel).
// What needs the server's templates is asked as HTML: the selected node's panel (a form generated from its type's
// JSON Schema) and a test run's result. Every request carries the page's CSRF token.
//
// Mouse: drag a node to move it, drag from an output port (right edge) to an input port (left edge) to connect,
// click a connection to select it. Keyboard: Tab to a node, Enter opens its panel and Enter again goes into it
// (Escape comes back), arrow keys move it (Shift: further), Delete removes it (or the selected connection); the
// panel's "Connect" form links ports without a mouse.
(function () {
  "use strict";

  var root = document.querySelector("[data-chatflow]");
  var bootElement = document.getElementById("cf-boot");
  if (!root || !bootElement) return;
  var boot = JSON.parse(bootElement.textContent);
  var types = {};
  boot.types.forEach(function (entry) { types[entry.type] = entry; });
  var graph = { nodes: boot.graph.nodes || [], edges: boot.graph.edges || [] };
  var problems = normalise(boot.problems);
  var canWrite = root.dataset.canWrite === "true";
  var selected = null;          // {node: id} or {edge: index}
  var dirty = false;
  var zoom = 1;
  var NODE_WIDTH = 184, HEAD = 46, ROW = 24, GAP_X = 230, GAP_Y = 150, MARGIN = 30;

  var viewport = root.querySelector("[data-cf-viewport]");
  var stage = root.querySelector("[data-cf-stage]");
  var edgesSvg = root.querySelector("[data-cf-edges]");
  var nodesList = root.querySelector("[data-cf-nodes]");
  var panel = root.querySelector("[data-cf-panel]");
  var emptyPanel = panel.innerHTML;
  var said = root.querySelector("[data-cf-said]");
  var problemsBox = root.querySelector("[data-cf-problems]");
  var SVG = "http://www.w3.org/2000/svg";

  // A sizer around the stage takes the zoomed size, so the viewport scrolls over all of it.
  var sizer = document.createElement("div");
  sizer.className = "cf-sizer";
  stage.parentNode.insertBefore(sizer, stage);
  sizer.appendChild(stage);

  // -- helpers ------------------------------------------------------------------------------------------------------

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), "Accept": "text/html, application/json" },
      body: JSON.stringify(body)
    });
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;  // ids and messages are text, never HTML
    return node;
  }

  function say(text) { said.textContent = text; }

  function normalise(found) {
    var p = found && typeof found === "object" ? found : {};
    var graphProblems = Array.isArray(p.graph) ? p.graph.slice() : [];
    return { nodes: p.nodes && typeof p.nodes === "object" ? p.nodes : {},
             edges: p.edges && typeof p.edges === "object" ? p.edges : {}, graph: graphProblems };
  }

  function count(p) {
    var n = p.graph.length;
    Object.keys(p.nodes).forEach(function (id) { n += (p.nodes[id] || []).length; });
    Object.keys(p.edges).forEach(function (i) { n += (p.edges[i] || []).length; });
    return n;
  }

  function nodeById(id) {
    for (var i = 0; i < graph.nodes.length; i++) if (graph.nodes[i].id === id) return graph.nodes[i];
    return null;
  }

  function typeLabel(name) {
    return types[name] ? types[name].label : String(name).replace(/_/g, " ");
  }

  function portsOf(node) {
    var entry = types[node.type] || { inputs: ["in"], outputs: ["out"] };
    var outputs = entry.outputs.slice();
    if (node.on_error === "error_port" || graph.edges.some(function (e) {
      return e.source === node.id && e.source_port === "error"; })) outputs.push("error");
    return { inputs: entry.inputs, outputs: outputs };
  }

  function heightOf(node) {
    var ports = portsOf(node);
    return HEAD + Math.max(ports.inputs.length, ports.outputs.length, 1) * ROW + 8;
  }

  function position(node) {
    if (!node.position || typeof node.position.x !== "number" || typeof node.position.y !== "number") {
      node.position = freeSpot(0, 0);
    }
    return node.position;
  }

  function portPoint(node, port, side) {
    var at = position(node);
    var ports = portsOf(node)[side === "out" ? "outputs" : "inputs"];
    var index = Math.max(0, ports.indexOf(port));
    return { x: at.x + (side === "out" ? NODE_WIDTH : 0), y: at.y + HEAD + index * ROW + ROW / 2 };
  }

  function overlaps(x, y) {
    return graph.nodes.some(function (node) {
      var at = node.position;
      return at && Math.abs(at.x - x) < NODE_WIDTH + 20 && Math.abs(at.y - y) < heightOf(node) + 20;
    });
  }

  /** The first free place on a grid, reading row by row from (left, top), as many columns as the box shows (so a
   *  new node appears where the person is looking, not off to the side). */
  function freeSpot(left, top) {
    var x0 = Math.max(MARGIN, Math.round(left / 20) * 20), y0 = Math.max(MARGIN, Math.round(top / 20) * 20);
    var columns = Math.max(1, Math.floor((viewport.clientWidth / zoom - MARGIN) / GAP_X));
    for (var row = 0; row < 60; row++) {
      for (var column = 0; column < columns; column++) {
        var x = x0 + column * GAP_X, y = y0 + row * GAP_Y;
        if (!overlaps(x, y)) return { x: x, y: y };
      }
    }
    return { x: x0, y: y0 + 60 * GAP_Y };
  }

  function changed(text) {
    dirty = true;
    say(text || "Unsaved changes.");
  }

  // -- drawing ------------------------------------------------------------------------------------------------------

  function stageSize() {
    var width = viewport.clientWidth / zoom, height = viewport.clientHeight / zoom;
    graph.nodes.forEach(function (node) {
      var at = position(node);
      width = Math.max(width, at.x + NODE_WIDTH + 2 * MARGIN);
      height = Math.max(height, at.y + heightOf(node) + 2 * MARGIN);
    });
    return { width: Math.ceil(width), height: Math.ceil(height) };
  }

  function resize() {
    var size = stageSize();
    stage.style.width = size.width + "px";
    stage.style.height = size.height + "px";
    stage.style.transform = "scale(" + zoom + ")";
    sizer.style.width = size.width * zoom + "px";
    sizer.style.height = size.height * zoom + "px";
    edgesSvg.setAttribute("width", size.width);
    edgesSvg.setAttribute("height", size.height);
  }

  function draw() {
    var focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.node : null;
    nodesList.textContent = "";
    graph.nodes.forEach(function (node) { nodesList.appendChild(nodeElement(node)); });
    drawEdges();
    drawProblems();
    if (focused) {
      var again = nodeButton(focused);
      if (again) again.focus({ preventScroll: true });
    }
  }

  function nodeButton(id) {
    var buttons = nodesList.querySelectorAll("[data-node]");
    for (var i = 0; i < buttons.length; i++) if (buttons[i].dataset.node === id) return buttons[i];
    return null;
  }

  function nodeElement(node) {
    var at = position(node);
    var entry = types[node.type];
    var mistakes = problems.nodes[node.id] || [];
    var item = element("li", "cf-node");
    item.id = "cf-node-" + node.id;
    item.dataset.nodeItem = node.id;
    if (entry && entry.role) item.classList.add("role-" + entry.role);
    if (!entry) item.classList.add("unknown");
    if (mistakes.length) item.classList.add("invalid");
    if (selected && selected.node === node.id) item.classList.add("selected");
    item.style.left = at.x + "px";
    item.style.top = at.y + "px";
    item.style.width = NODE_WIDTH + "px";
    item.style.height = heightOf(node) + "px";

    var button = element("button", "cf-node-button");
    button.type = "button";
    button.dataset.node = node.id;
    button.setAttribute("aria-pressed", selected && selected.node === node.id ? "true" : "false");
    button.appendChild(element("span", "cf-node-type", typeLabel(node.type)));
    button.appendChild(element("span", "cf-node-id", node.id));
    if (mistakes.length) {
      button.appendChild(element("span", "visually-hidden",
        ", " + mistakes.length + (mistakes.length === 1 ? " problem" : " problems")));
      button.appendChild(element("span", "cf-node-flag", "!")).setAttribute("aria-hidden", "true");
    }
    item.appendChild(button);

    var ports = portsOf(node);
    ["inputs", "outputs"].forEach(function (side) {
      ports[side].forEach(function (port, index) {
        var dot = element("span", "cf-port " + (side === "inputs" ? "in" : "out"), port);
        dot.dataset.port = port;
        dot.dataset.portNode = node.id;
        dot.setAttribute("aria-hidden", "true");  // the panel's "Connect" form is the keyboard's way
        dot.style.top = HEAD + index * ROW + "px";
        if (port === "error") dot.classList.add("error-port");
        item.appendChild(dot);
      });
    });
    return item;
  }

  function curve(a, b) {
    var dx = Math.max(40, Math.abs(b.x - a.x) / 2);
    return "M" + a.x + " " + a.y + " C" + (a.x + dx) + " " + a.y + " " + (b.x - dx) + " " + b.y + " " + b.x + " " + b.y;
  }

  function drawEdges() {
    resize();
    edgesSvg.textContent = "";
    var defs = document.createElementNS(SVG, "defs");
    [["cf-arrow", "cf-arrow"], ["cf-arrow-bad", "cf-arrow bad"], ["cf-arrow-on", "cf-arrow on"]].forEach(function (pair) {
      var marker = document.createElementNS(SVG, "marker");
      marker.setAttribute("id", pair[0]);
      marker.setAttribute("viewBox", "0 0 10 10");
      marker.setAttribute("refX", "9");
      marker.setAttribute("refY", "5");
      marker.setAttribute("markerWidth", "7");
      marker.setAttribute("markerHeight", "7");
      marker.setAttribute("orient", "auto");
      var tip = document.createElementNS(SVG, "path");
      tip.setAttribute("d", "M0 0 L10 5 L0 10 z");
      tip.setAttribute("class", pair[1]);
      marker.appendChild(tip);
      defs.appendChild(marker);
    });
    edgesSvg.appendChild(defs);
    graph.edges.forEach(function (edge, index) {
      var source = nodeById(edge.source), target = nodeById(edge.target);
      if (!source || !target) return;
      var d = curve(portPoint(source, edge.source_port, "out"), portPoint(target, edge.target_port, "in"));
      var bad = (problems.edges[String(index)] || []).length > 0;
      var on = selected && selected.edge === index;
      var line = document.createElementNS(SVG, "path");
      line.setAttribute("d", d);
      line.setAttribute("class", "cf-edge" + (bad ? " bad" : "") + (on ? " on" : ""));
      line.setAttribute("marker-end", "url(#" + (on ? "cf-arrow-on" : bad ? "cf-arrow-bad" : "cf-arrow") + ")");
      var hit = document.createElementNS(SVG, "path");
      hit.setAttribute("d", d);
      hit.setAttribute("class", "cf-edge-hit");
      hit.dataset.edge = String(index);
      edgesSvg.appendChild(line);
      edgesSvg.appendChild(hit);
    });
  }

  function placeNode(node) {
    var item = document.getElementById("cf-node-" + node.id);
    if (item) {
      item.style.left = node.position.x + "px";
      item.style.top = node.position.y + "px";
    }
    drawEdges();
  }

  function drawProblems() {
    var total = count(problems);
    problemsBox.textContent = "";
    if (!total) {
      problemsBox.hidden = true;
      return;
    }
    problemsBox.hidden = false;
    problemsBox.appendChild(element("p", null, (dirty ? "Not saved: " : "") + "this chatflow has " + total +
      (total === 1 ? " problem" : " problems") + ". Fix " + (total === 1 ? "it" : "them") + ", then save."));
    var list = element("ul");
    Object.keys(problems.nodes).forEach(function (id) {
      var messages = problems.nodes[id] || [];
      if (!messages.length) return;
      var item = element("li");
      var link = element("a", null, id + " (" + typeLabel((nodeById(id) || {}).type || "?") + ")");
      link.href = "#cf-node-" + id;
      link.dataset.cfGoto = id;
      item.appendChild(link);
      item.appendChild(document.createTextNode(": " + messages.join(" ")));
      list.appendChild(item);
    });
    Object.keys(problems.edges).forEach(function (index) {
      var edge = graph.edges[Number(index)];
      var messages = problems.edges[index] || [];
      if (!messages.length) return;
      var where = edge ? "The connection from " + edge.source + " (" + edge.source_port + ") to " + edge.target +
        " (" + edge.target_port + ")" : "A connection";
      list.appendChild(element("li", null, where + ": " + messages.join(" ")));
    });
    problems.graph.forEach(function (message) { list.appendChild(element("li", null, message)); });
    problemsBox.appendChild(list);
  }

  // -- selection and the panel --------------------------------------------------------------------------------------

  var panelRequest = 0;

  function select(target, options) {
    selected = target;
    draw();
    if (!target) {
      panel.innerHTML = emptyPanel;
      return Promise.resolve();
    }
    if (target.edge !== undefined) {
      showEdgePanel(target.edge);
      return Promise.resolve();
    }
    return loadPanel(target.node, options || {});
  }

  function loadPanel(id, options) {
    var ticket = ++panelRequest;
    return post(root.dataset.panel, { nodes: graph.nodes, edges: graph.edges, node_id: id,
                                     errors: problems.nodes[id] || [] })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response); })
      .then(function (html) {
        if (ticket !== panelRequest) return;  // another node was chosen meanwhile
        var same = panel.querySelector("[data-cf-settings]");
        var keep = same && same.dataset.cfSettings === id ? panel.scrollTop : 0;
        panel.innerHTML = html;
        panel.scrollTop = keep;  // the same node again stays where it was read; another starts at its top
        if (options.focusPanel) {
          var heading = panel.querySelector("#cf-panel-title");
          if (heading) heading.focus();
        }
        if (options.focus) {
          var target = panel.querySelector(options.focus);
          if (target) target.focus();
        }
      })
      .catch(function () { say("The node’s settings could not be loaded: check the connection and try again."); });
  }

  function showEdgePanel(index) {
    var edge = graph.edges[index];
    panel.textContent = "";
    if (!edge) return;
    var heading = element("h2", null, "Connection");
    heading.id = "cf-panel-title";
    heading.tabIndex = -1;
    panel.appendChild(heading);
    var text = element("p");
    text.appendChild(document.createTextNode("From "));
    text.appendChild(element("strong", null, edge.source));
    text.appendChild(document.createTextNode(" (" + edge.source_port + ") to "));
    text.appendChild(element("strong", null, edge.target));
    text.appendChild(document.createTextNode(" (" + edge.target_port + ")."));
    panel.appendChild(text);
    (problems.edges[String(index)] || []).forEach(function (message) {
      panel.appendChild(element("p", "error", message));
    });
    if (canWrite) {
      var remove = element("button", "button danger small", "Remove this connection");
      remove.type = "button";
      remove.dataset.cfUnlink = String(index);
      panel.appendChild(element("p", "actions")).appendChild(remove);
      panel.appendChild(element("p", "hint", "Or press Delete."));
    }
  }

  // -- changing the graph ------------------------------------------------------------------------------------------

  function newId(type) {
    var base = String(type).replace(/[^A-Za-z0-9_]/g, "_");
    for (var n = 1; ; n++) if (!nodeById(base + "_" + n)) return base + "_" + n;
  }

  function addNode(type) {
    var entry = types[type];
    if (!entry) return;
    var spot = freeSpot(viewport.scrollLeft / zoom + MARGIN, viewport.scrollTop / zoom + MARGIN);
    var node = { id: newId(type), type: type, version: entry.version,
                 config: JSON.parse(JSON.stringify(entry.starter || {})), position: spot };
    graph.nodes.push(node);
    changed("Added " + node.id + ". Connect it and fill in its settings, then save.");
    select({ node: node.id }).then(function () {
      var button = nodeButton(node.id);
      if (button) {
        button.focus({ preventScroll: true });
        button.scrollIntoView({ block: "nearest", inline: "nearest" });
      }
    });
  }

  function removeNode(id) {
    graph.nodes = graph.nodes.filter(function (node) { return node.id !== id; });
    var before = graph.edges.length;
    graph.edges = graph.edges.filter(function (edge) { return edge.source !== id && edge.target !== id; });
    if (graph.edges.length !== before) problems.edges = {};  // their indexes moved: stale until the next save
    delete problems.nodes[id];
    changed("Deleted " + id + (graph.edges.length !== before ? " and its connections." : "."));
    select(null);
    var first = nodesList.querySelector("[data-node]");
    if (first) first.focus();
  }

  function connect(source, sourcePort, target, targetPort) {
    if (source === target) {
      say("A node cannot be connected to itself.");
      return false;
    }
    var exists = graph.edges.some(function (e) {
      return e.source === source && e.source_port === sourcePort && e.target === target && e.target_port === targetPort;
    });
    if (exists) {
      say("Those two ports are already connected.");
      return false;
    }
    graph.edges.push({ source: source, source_port: sourcePort, target: target, target_port: targetPort });
    changed("Connected " + source + " (" + sourcePort + ") to " + target + " (" + targetPort + ").");
    return true;
  }

  /** Lay the nodes out from left to right in the order the flow runs: each node one column after the furthest
   *  node leading to it (a loop's way back is not followed twice), nodes nothing leads to in a last column. */
  function arrange() {
    var depth = {};
    graph.nodes.forEach(function (node) {
      var entry = types[node.type];
      if (entry && entry.role === "start") depth[node.id] = 0;
    });
    for (var pass = 0; pass < graph.nodes.length; pass++) {
      var moved = false;
      graph.edges.forEach(function (edge) {
        if (depth[edge.source] === undefined || !nodeById(edge.target)) return;
        var next = depth[edge.source] + 1;
        if (next < graph.nodes.length && (depth[edge.target] === undefined || depth[edge.target] < next)) {
          depth[edge.target] = next;
          moved = true;
        }
      });
      if (!moved) break;
    }
    var last = 0;
    Object.keys(depth).forEach(function (id) { last = Math.max(last, depth[id]); });
    var tops = {};
    graph.nodes.forEach(function (node) {
      var column = depth[node.id] === undefined ? last + 1 : depth[node.id];
      var y = tops[column] || MARGIN;
      node.position = { x: MARGIN + column * (NODE_WIDTH + 56), y: y };
      tops[column] = y + heightOf(node) + 32;
    });
    changed("Arranged the nodes from left to right, in the order the flow runs.");
    draw();
    viewport.scrollLeft = 0;
    viewport.scrollTop = 0;
  }

  function unlink(index) {
    var edge = graph.edges[index];
    if (!edge) return;
    graph.edges.splice(index, 1);
    problems.edges = {};
    changed("Removed the connection from " + edge.source + " to " + edge.target + ".");
  }

  // -- the panel's fields back into the graph ------------------------------------------------------------------------

  function fieldError(field, message) {
    var box = document.getElementById(field.id + "-error");
    var wrapper = field.closest(".field");
    if (box) box.textContent = message || "";
    if (wrapper) wrapper.classList.toggle("invalid", !!message);
    if (field.tagName === "FIELDSET") return;  // a group of checkboxes: the class and the message say it
    if (message) field.setAttribute("aria-invalid", "true");
    else field.removeAttribute("aria-invalid");
  }

  /** {value} or {omit: true} or {message} for one generated field. */
  function readSetting(field) {
    var kind = field.dataset.kind, required = field.dataset.required === "true", text = field.value;
    if (kind === "checkbox") return { value: field.checked };
    if (kind === "checks") {
      return { value: Array.prototype.map.call(field.querySelectorAll("input:checked"), function (box) { return box.value; }) };
    }
    if (kind === "select") return text === "" ? { omit: true } : { value: JSON.parse(text) };
    if (kind === "integer" || kind === "number") {
      if (field.validity && field.validity.badInput) return { message: "Type a number." };
      if (text.trim() === "") return required ? { message: "Required." } : { omit: true };
      var number = Number(text);
      if (!isFinite(number)) return { message: "Type a number." };
      if (kind === "integer" && !Number.isInteger(number)) return { message: "Type a whole number." };
      return { value: number };
    }
    if (kind === "lines") {
      return { value: text.split("\n").map(function (line) { return line.trim(); }).filter(Boolean) };
    }
    if (kind === "json") {
      if (text.trim() === "") return required ? { message: "Required: type JSON here." } : { omit: true };
      try { return { value: JSON.parse(text) }; } catch (error) { return { message: "Not valid JSON: " + error.message }; }
    }
    return text === "" && !required ? { omit: true } : { value: text };
  }

  function applySetting(field) {
    var form = field.closest("[data-cf-settings]");
    var node = form && nodeById(form.dataset.cfSettings);
    if (!node) return;
    var read = readSetting(field);
    if (read.message) {
      fieldError(field, read.message);
      return;
    }
    fieldError(field, "");
    node.config = node.config && typeof node.config === "object" ? node.config : {};
    if (read.omit) delete node.config[field.dataset.setting];
    else node.config[field.dataset.setting] = read.value;
    changed();
  }

  function applyPolicy(field) {
    var form = field.closest("[data-cf-settings]");
    var node = form && nodeById(form.dataset.cfSettings);
    if (!node) return;
    var name = field.dataset.policy, text = field.value.trim();
    if (name === "attempts" || name === "backoff_ms") {
      var number = Number(text || (name === "attempts" ? 1 : 0));
      if (!Number.isInteger(number) || number < (name === "attempts" ? 1 : 0)) {
        fieldError(field, name === "attempts" ? "Type a whole number from 1." : "Type a whole number from 0.");
        return;
      }
      fieldError(field, "");
      node.retry = Object.assign({}, node.retry || {});
      node.retry[name] = number;
      if (node.retry.attempts === 1 && !node.retry.backoff_ms) delete node.retry;
    } else if (name === "on_error") {
      if (text === "stop") delete node.on_error;
      else node.on_error = text;
      draw();  // the error port appears or goes
    } else if (name === "default") {
      if (!text) {
        delete node["default"];
      } else {
        var parsed;
        try { parsed = JSON.parse(text); } catch (error) {
          fieldError(field, "Not valid JSON: " + error.message);
          return;
        }
        if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
          fieldError(field, "Type a JSON object, e.g. {\"text\": \"Sorry\"}.");
          return;
        }
        node["default"] = parsed;
      }
      fieldError(field, "");
    }
    changed();
  }

  function unreadable() {
    return panel.querySelector('[data-cf-settings] [aria-invalid="true"][data-policy], ' +
      '[data-cf-settings] .field.invalid [data-kind="json"][aria-invalid="true"]');
  }

  // -- saving, testing, publishing ---------------------------------------------------------------------------------

  function save() {
    var bad = unreadable();
    if (bad) {
      say("Not saved: a setting of the selected node is not valid yet. Fix it first.");
      bad.focus();
      return Promise.resolve(false);
    }
    say("Saving…");
    return post(root.dataset.save, { nodes: graph.nodes, edges: graph.edges })
      .then(function (response) {
        return response.json().then(function (body) { return { status: response.status, body: body }; });
      })
      .then(function (answer) {
        if (answer.status === 200) {
          dirty = false;
          problems = normalise(null);
          say("Saved.");
          drawProblems();
          draw();
          if (selected && selected.node) loadPanel(selected.node, {});
          return true;
        }
        refused(answer.body, "Not saved");
        return false;
      })
      .catch(function () {
        say("Not saved: the server could not be reached. Your changes are still here; try again.");
        return false;
      });
  }

  /** The store refused the graph: draw its problems and say so; nothing of the graph is lost. */
  function refused(body, what) {
    var errors = body && body.errors;
    if (errors && (errors.nodes || errors.edges || errors.graph)) problems = normalise(errors);
    else problems = normalise({ graph: [body && body.message ? body.message : "The server refused it."] });
    var total = count(problems);
    say(what + ": " + total + (total === 1 ? " problem" : " problems") + ", listed above the canvas.");
    draw();
    problemsBox.focus();
    if (selected && selected.node) loadPanel(selected.node, {});
  }

  function runTest(body, form) {
    var result = root.querySelector("[data-cf-result]");
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    result.textContent = "";
    result.appendChild(element("p", "hint", "Running…"));
    return post(root.dataset.test, Object.assign({ nodes: graph.nodes, edges: graph.edges }, body))
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (type.indexOf("application/json") === 0) {
          return response.json().then(function (answer) {
            result.textContent = "";
            if (answer.errors && answer.errors.message) {
              var box = form.querySelector(".error");
              if (box) box.textContent = answer.message;
              return;
            }
            refused(answer, "The test did not run");
            result.appendChild(element("p", "error", "The test did not run: fix the problems listed above the canvas."));
          });
        }
        return response.text().then(function (html) {
          result.innerHTML = html;
          var title = result.querySelector("[data-cf-result-title]");
          if (title) title.focus();
        });
      })
      .catch(function () {
        result.textContent = "";
        result.appendChild(element("p", "error", "The test could not reach the server. Try again."));
      })
      .then(function () { button.disabled = false; });
  }

  // -- events -------------------------------------------------------------------------------------------------------

  var drag = null, link = null, swallowClick = false;

  function stagePoint(event) {
    var box = stage.getBoundingClientRect();
    return { x: (event.clientX - box.left) / zoom, y: (event.clientY - box.top) / zoom };
  }

  nodesList.addEventListener("pointerdown", function (event) {
    if (!canWrite || event.button !== 0) return;
    var port = event.target.closest(".cf-port.out");
    if (port) {
      event.preventDefault();
      var draft = document.createElementNS(SVG, "path");
      draft.setAttribute("class", "cf-edge draft");
      edgesSvg.appendChild(draft);
      link = { source: port.dataset.portNode, port: port.dataset.port, draft: draft };
      return;
    }
    var button = event.target.closest("[data-node]");
    if (!button) return;
    var node = nodeById(button.dataset.node);
    drag = { node: node, from: stagePoint(event), origin: { x: node.position.x, y: node.position.y }, moved: false };
  });

  document.addEventListener("pointermove", function (event) {
    if (drag) {
      var at = stagePoint(event);
      var dx = at.x - drag.from.x, dy = at.y - drag.from.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
      drag.moved = true;
      drag.node.position = { x: Math.max(0, Math.round(drag.origin.x + dx)), y: Math.max(0, Math.round(drag.origin.y + dy)) };
      placeNode(drag.node);
    } else if (link) {
      var source = nodeById(link.source);
      link.draft.setAttribute("d", curve(portPoint(source, link.port, "out"), stagePoint(event)));
    }
  });

  document.addEventListener("pointerup", function (event) {
    if (drag) {
      if (drag.moved) {
        swallowClick = true;
        changed("Moved " + drag.node.id + ".");
      }
      drag = null;
    }
    if (link) {
      var under = document.elementFromPoint(event.clientX, event.clientY);
      var port = under && under.closest(".cf-port.in");
      var item = under && under.closest("[data-node-item]");
      var current = link;
      link = null;
      current.draft.remove();
      var target = port ? port.dataset.portNode : item ? item.dataset.nodeItem : null;
      if (!target) return;
      var targetNode = nodeById(target);
      var inputs = targetNode ? portsOf(targetNode).inputs : [];
      var targetPort = port ? port.dataset.port : inputs[0];
      if (!targetPort) {
        say(target + " takes no input.");
        return;
      }
      if (connect(current.source, current.port, target, targetPort)) select(selected || { node: current.source });
    }
  });

  nodesList.addEventListener("click", function (event) {
    var button = event.target.closest("[data-node]");
    if (!button) return;
    if (swallowClick) {
      swallowClick = false;
      return;
    }
    if (event.detail === 0 && selected && selected.node === button.dataset.node) {
      // Enter (or Space) again on the selected node: into its settings, without tabbing past every other node.
      var heading = panel.querySelector("#cf-panel-title");
      if (heading) heading.focus();
      return;
    }
    select({ node: button.dataset.node });
  });

  panel.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || !selected || selected.node === undefined) return;
    var button = nodeButton(selected.node);
    if (button) {
      event.preventDefault();
      button.focus();  // back to the node on the canvas
    }
  });

  nodesList.addEventListener("keydown", function (event) {
    var button = event.target.closest("[data-node]");
    if (!button || !canWrite) return;
    var node = nodeById(button.dataset.node);
    var step = event.shiftKey ? 50 : 10;
    var moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[event.key]) {
      event.preventDefault();
      node.position = { x: Math.max(0, node.position.x + moves[event.key][0]),
                        y: Math.max(0, node.position.y + moves[event.key][1]) };
      placeNode(node);
      button.scrollIntoView({ block: "nearest", inline: "nearest" });
      changed("Moved " + node.id + " to " + node.position.x + ", " + node.position.y + ".");
    } else if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      removeNode(node.id);
    }
  });

  edgesSvg.addEventListener("click", function (event) {
    var hit = event.target.closest("[data-edge]");
    if (hit) select({ edge: Number(hit.dataset.edge) });
  });

  document.addEventListener("keydown", function (event) {
    if (canWrite && (event.ctrlKey || event.metaKey) && (event.key === "s" || event.key === "S")) {
      event.preventDefault();  // Ctrl+S / Cmd+S saves the graph, wherever the focus is
      save();
      return;
    }
    if (!canWrite || !selected || selected.edge === undefined) return;
    if (event.key !== "Delete" && event.key !== "Backspace") return;
    if (event.target.closest && event.target.closest("input, textarea, select, [contenteditable]")) return;
    event.preventDefault();
    unlink(selected.edge);
    select(null);
  });

  function edited(event) {
    var setting = event.target.closest("[data-setting]");
    if (setting) applySetting(setting);
    else if (event.target.dataset.policy) applyPolicy(event.target);
  }
  panel.addEventListener("input", edited);
  panel.addEventListener("change", edited);

  panel.addEventListener("submit", function (event) {
    var form = event.target.closest("[data-cf-connect]");
    if (!form) return;
    event.preventDefault();
    var port = form.querySelector("[name=source_port]").value;
    var choice = form.querySelector("[name=target]").value;
    if (!choice) return;
    var target = JSON.parse(choice);
    if (connect(form.dataset.cfConnect, port, target.target, target.target_port)) {
      loadPanel(form.dataset.cfConnect, { focus: "[data-cf-connect] button[type=submit]" });
      draw();
    }
  });

  panel.addEventListener("click", function (event) {
    var unlinkButton = event.target.closest("[data-cf-unlink]");
    if (unlinkButton) {
      unlink(Number(unlinkButton.dataset.cfUnlink));
      if (selected && selected.node) {
        loadPanel(selected.node, { focusPanel: true });
        draw();
      } else {
        select(null);
      }
      return;
    }
    var deleteButton = event.target.closest("[data-cf-delete-node]");
    if (deleteButton) removeNode(deleteButton.dataset.cfDeleteNode);
  });

  root.addEventListener("click", function (event) {
    var goto = event.target.closest("[data-cf-goto]");
    if (goto) {
      event.preventDefault();
      var id = goto.dataset.cfGoto;
      select({ node: id }).then(function () {
        var button = nodeButton(id);
        if (button) {
          button.scrollIntoView({ block: "center", inline: "center" });
          button.focus({ preventScroll: true });
        }
      });
      return;
    }
    var add = event.target.closest("[data-cf-add]");
    if (add) {
      addNode(add.dataset.cfAdd);
      return;
    }
    if (event.target.closest("[data-cf-arrange]")) {
      arrange();
      return;
    }
    if (event.target.closest("[data-cf-save]")) {
      save();
      return;
    }
    if (event.target.closest("[data-cf-to-palette]")) {
      event.preventDefault();
      var search = root.querySelector("[data-cf-search]");
      if (search) {
        search.scrollIntoView({ block: "center" });
        search.focus({ preventScroll: true });
      }
      return;
    }
    var zoomButton = event.target.closest("[data-cf-zoom]");
    if (zoomButton) {
      var how = zoomButton.dataset.cfZoom;
      zoom = how === "reset" ? 1 : Math.min(1.6, Math.max(0.4, Math.round((zoom + (how === "in" ? 0.1 : -0.1)) * 10) / 10));
      root.querySelector('[data-cf-zoom="reset"]').textContent = Math.round(zoom * 100) + "%";
      drawEdges();
    }
  });

  root.addEventListener("submit", function (event) {
    var test = event.target.closest("[data-cf-test]");
    var resume = event.target.closest("[data-cf-resume]");
    if (!test && !resume) return;
    event.preventDefault();
    var field = (test || resume).querySelector("textarea");
    var error = (test || resume).querySelector(".error");
    if (!field.value.trim()) {
      error.textContent = test ? "Type a message to test with." : "Type your answer.";
      field.setAttribute("aria-invalid", "true");
      field.focus();
      return;
    }
    error.textContent = "";
    field.removeAttribute("aria-invalid");
    if (test) {
      runTest({ message: field.value }, test);
    } else {
      runTest({ message: resume.dataset.message, state: JSON.parse(resume.dataset.state), answer: field.value }, resume);
    }
  });

  var search = root.querySelector("[data-cf-search]");
  if (search) {
    search.addEventListener("input", function () {
      var query = search.value.trim().toLowerCase();
      var shown = 0;
      root.querySelectorAll("[data-cf-group]").forEach(function (group) {
        var any = false;
        group.querySelectorAll("[data-cf-entry]").forEach(function (entry) {
          var match = !query || entry.dataset.search.indexOf(query) !== -1;
          entry.hidden = !match;
          if (match) { any = true; shown++; }
        });
        group.hidden = !any;
      });
      root.querySelector("[data-cf-search-said]").textContent = !query ? "" : shown
        ? shown + (shown === 1 ? " node type matches." : " node types match.")
        : "No node type matches “" + search.value.trim() + "”.";
    });
  }

  // Publishing publishes the saved graph: save what is on the canvas first.
  var publishForm = document.querySelector("[data-cf-publish]");
  if (publishForm) {
    publishForm.addEventListener("submit", function (event) {
      if (!dirty) return;
      event.preventDefault();
      save().then(function (ok) { if (ok) publishForm.submit(); });
    });
  }

  window.addEventListener("beforeunload", function (event) {
    if (dirty) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
  window.addEventListener("resize", drawEdges);

  // A phone shows more of the graph at three quarters of its size; the zoom buttons change it.
  if (viewport.clientWidth < 480) {
    zoom = 0.75;
    root.querySelector('[data-cf-zoom="reset"]').textContent = "75%";
  }
  draw();
  if (count(problems)) say("This chatflow has problems: they are listed above the canvas.");
})();
