// The import page: upload progress for large files, then an indeterminate bar while the server
// stores it; the import itself then runs in the background, on its own page.
(() => {
  "use strict";
  let uploaded = false;
  document.body.addEventListener("htmx:beforeSend", () => { uploaded = false; });
  document.body.addEventListener("htmx:xhr:progress", (event) => {
    const box = document.querySelector(".import-progress");
    if (!box || uploaded || !event.detail.lengthComputable) return;
    box.hidden = false;
    const bar = document.getElementById("upload-progress");
    const status = document.getElementById("upload-status");
    const percent = Math.round((event.detail.loaded / event.detail.total) * 100);
    if (percent < 100) {
      bar.value = percent;
      status.textContent = `Uploading… ${percent}%`;
    } else {
      uploaded = true; // later progress events are the response downloading
      bar.removeAttribute("value");
      status.textContent = "Uploaded. Storing the file…";
    }
  });
})();
