// Drag-and-drop uploads on a knowledge base's page. Each file is posted on its own (XHR, so it has an upload
// progress bar and its own error); the server answers the document's row, which joins the table and then polls
// its processing progress itself (htmx). Without this script the form posts every file at once.
(() => {
  "use strict";
  const PARALLEL = 3;

  function setup(form) {
    const input = form.querySelector("[data-file-input]");
    const list = document.getElementById(form.dataset.uploads);
    const rows = document.getElementById(form.dataset.rows);
    const maxBytes = Number(form.dataset.maxBytes);
    const queue = [];
    let running = 0;

    const item = (file) => {
      const li = document.createElement("li");
      li.className = "upload";
      const name = document.createElement("span");
      name.className = "upload-name";
      name.textContent = file.name;
      const bar = document.createElement("progress");
      bar.max = 100;
      bar.value = 0;
      bar.setAttribute("aria-label", `Uploading ${file.name}`);
      li.append(name, bar);
      list.append(li);
      return li;
    };

    const fail = (li, html, text) => {
      li.querySelector("progress")?.remove();
      li.classList.add("upload-failed");
      if (html) li.insertAdjacentHTML("beforeend", html);
      else {
        const p = document.createElement("p");
        p.className = "upload-error error";
        p.setAttribute("role", "alert");
        p.textContent = text;
        li.append(p);
      }
      const dismiss = document.createElement("button");
      dismiss.type = "button";
      dismiss.className = "link";
      dismiss.textContent = "Dismiss";
      dismiss.addEventListener("click", () => li.remove());
      li.append(dismiss);
    };

    const send = (file, li) => {
      running += 1;
      const data = new FormData();
      data.append("files", file);
      data.append("tags", form.querySelector("[name=tags]")?.value || "");
      data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
      const request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.setRequestHeader("X-Upload", "1");
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) li.querySelector("progress").value = Math.round((100 * event.loaded) / event.total);
      });
      request.addEventListener("load", () => {
        if (request.status === 201) {
          li.remove();
          document.getElementById("documents-empty")?.remove();
          rows.insertAdjacentHTML("afterbegin", request.responseText);
          if (window.htmx) window.htmx.process(rows.firstElementChild);
        } else if (request.getResponseHeader("Content-Type")?.startsWith("text/html") && request.status < 500) {
          fail(li, request.responseText);
        } else {
          fail(li, null, `${file.name}: the upload failed (HTTP ${request.status}). Try again.`);
        }
        done();
      });
      request.addEventListener("error", () => {
        fail(li, null, `${file.name}: the connection failed. Try again.`);
        done();
      });
      request.send(data);
    };

    const done = () => {
      running -= 1;
      next();
    };

    const next = () => {
      while (running < PARALLEL && queue.length) {
        const [file, li] = queue.shift();
        send(file, li);
      }
    };

    const add = (files) => {
      for (const file of files) {
        const li = item(file);
        if (maxBytes && file.size > maxBytes) {
          fail(li, null, `${file.name}: ${(file.size / 1048576).toFixed(1)} MB. ${form.dataset.limitText}`);
          continue;
        }
        queue.push([file, li]);
      }
      next();
    };

    input.addEventListener("change", () => {
      add([...input.files]);
      input.value = "";
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      add([...input.files]);
    });
    form.addEventListener("dragover", (event) => {
      event.preventDefault();
      form.classList.add("dropzone-active");
    });
    form.addEventListener("dragleave", () => form.classList.remove("dropzone-active"));
    form.addEventListener("drop", (event) => {
      event.preventDefault();
      form.classList.remove("dropzone-active");
      add([...event.dataTransfer.files]);
    });
  }

  document.addEventListener("DOMContentLoaded", () => document.querySelectorAll("[data-dropzone]").forEach(setup));
})();
