// The knowledge pages' drop zone: files dropped on it or chosen with its file input are uploaded one request per
// file, each with its own progress bar (XMLHttpRequest's upload progress events; fetch has none), and refused ones
// say why. When the last one is done, the list they were added to is redrawn by htmx (`data-refresh-url` into
// `data-refresh-target`). Without this script the same form sends the chosen files at once.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function sizeLabel(bytes) {
    if (bytes < 1024) return bytes + " bytes";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
    return (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  function setUp(form) {
    if (form.dataset.uploadReady) return;
    form.dataset.uploadReady = "1";
    form.classList.add("kb-scripted");
    var zone = form.querySelector("[data-dropzone]");
    var input = form.querySelector('input[type="file"]');
    var list = form.querySelector("[data-uploads]");
    var said = form.querySelector("[data-upload-status]");
    var queue = [];
    var running = false;
    var counts = {done: 0, refused: 0};

    input.addEventListener("change", function () {
      add(input.files);
      input.value = "";
    });
    zone.addEventListener("dragover", function (event) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      zone.classList.add("kb-over");
    });
    zone.addEventListener("dragleave", function (event) {
      if (!zone.contains(event.relatedTarget)) zone.classList.remove("kb-over");
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("kb-over");
      add(event.dataTransfer.files);
    });
    form.addEventListener("submit", function (event) {  // Enter on the input: the files are on their way already
      event.preventDefault();
    });

    function add(files) {
      Array.prototype.forEach.call(files || [], function (file) {
        var job = row(file);
        job.file = file;
        queue.push(job);
      });
      if (!running) next();
    }

    function row(file) {
      var item = document.createElement("li");
      var name = document.createElement("span");
      name.className = "kb-upload-name";
      name.textContent = file.name + " (" + sizeLabel(file.size) + ")";
      var bar = document.createElement("progress");
      bar.max = 100;
      bar.value = 0;
      bar.setAttribute("aria-label", "Uploading " + file.name);
      var state = document.createElement("span");
      state.className = "kb-upload-state";
      state.textContent = "Waiting";
      item.append(name, bar, state);
      list.hidden = false;
      list.append(item);
      return {item: item, bar: bar, state: state};
    }

    function next() {
      var job = queue.shift();
      if (!job) {
        running = false;
        finish();
        return;
      }
      running = true;
      var maxBytes = Number(form.dataset.maxBytes || 0);
      if (maxBytes && job.file.size > maxBytes) {
        refuse(job, "larger than the " + form.dataset.maxMb + " MB limit");
        next();
        return;
      }
      send(job);
    }

    function send(job) {
      var data = new FormData();
      data.append("files", job.file, job.file.name);
      var request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.setRequestHeader("X-CSRFToken", csrfToken());
      request.setRequestHeader("Accept", "application/json");
      job.state.textContent = "Uploading";
      request.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) job.bar.value = Math.round(event.loaded / event.total * 100);
      });
      request.addEventListener("load", function () {
        if (request.status >= 200 && request.status < 300) {
          job.bar.value = 100;
          job.state.textContent = "Uploaded";
          job.item.classList.add("kb-done");
          counts.done += 1;
        } else {
          refuse(job, reason(request));
        }
        next();
      });
      request.addEventListener("error", function () {
        refuse(job, "the connection failed; try again");
        next();
      });
      request.send(data);
    }

    function reason(request) {
      if (request.status === 413) return "larger than the " + form.dataset.maxMb + " MB limit";
      try {
        var body = JSON.parse(request.responseText);
        if (body && body.message) return body.message;
      } catch (ignored) { /* an error page, not JSON */ }
      return "refused (" + request.status + "); reload the page and try again";
    }

    function refuse(job, message) {
      job.item.classList.add("kb-refused");
      job.bar.remove();
      job.state.textContent = "Not added: " + message;
      counts.refused += 1;
    }

    function finish() {
      var parts = [];
      if (counts.done) parts.push(counts.done + " file" + (counts.done === 1 ? "" : "s") + " added");
      if (counts.refused) parts.push(counts.refused + " not added");
      said.textContent = parts.length ? parts.join(", ") + "." : "";
      counts = {done: 0, refused: 0};
      var target = document.querySelector(form.dataset.refreshTarget);
      if (target && window.htmx) {
        window.htmx.ajax("GET", form.dataset.refreshUrl, {target: target, swap: "outerHTML"});
      }
    }
  }

  function setUpAll(root) {
    (root || document).querySelectorAll("form[data-upload]").forEach(setUp);
  }

  document.addEventListener("DOMContentLoaded", function () { setUpAll(document); });
  document.addEventListener("htmx:load", function (event) { setUpAll(event.detail.elt); });
})();
