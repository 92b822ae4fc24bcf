// Keyboard-first reviewing. The next sample is fetched as soon as one is shown, so moving on after a save
// (or with j) swaps in HTML that is already here. Every save still goes through htmx and the server.
(() => {
  "use strict";
  let prefetched = { url: null, html: null };

  const item = () => document.getElementById("review-item");

  function prefetchNext() {
    const url = item()?.dataset.nextUrl;
    prefetched = { url: url || null, html: null };
    if (!url) return;
    fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : null))
      .then((html) => {
        if (prefetched.url === url) prefetched.html = html;
      })
      .catch(() => {}); // a failed prefetch just means loading on demand
  }

  function show(html, url) {
    const current = item();
    const holder = document.createElement("div");
    holder.innerHTML = html;
    const fresh = holder.querySelector("#review-item");
    if (!current || !fresh) {
      window.location.href = url;
      return;
    }
    current.replaceWith(fresh);
    htmx.process(fresh);
    history.pushState({ url }, "", url);
    document.title = `${fresh.querySelector("h1")?.textContent || "Review"} · MemAlign`;
    window.scrollTo(0, 0);
    prefetchNext();
  }

  function go(url) {
    if (!url) return;
    if (prefetched.url === url && prefetched.html) {
      show(prefetched.html, url);
      return;
    }
    fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => show(html, url))
      .catch(() => (window.location.href = url));
  }

  function pickLabel(key) {
    const radio = item()?.querySelector(`input[name="label"][data-key="${key}"]`);
    if (!radio) return;
    radio.checked = true;
    // Disagreeing needs a critique: go straight to the box (Esc leaves it, Ctrl+Enter saves from it).
    const critique = document.getElementById("critique");
    const judge = item()?.dataset.judgeValue;
    if (critique && judge && radio.value !== judge && !critique.value.trim()) critique.focus();
  }

  function save() {
    const form = document.getElementById("feedback-form");
    if (!form) return;
    // requestSubmit fires a real submit event, which htmx turns into its POST (hx-sync drops a second one).
    if (form.requestSubmit) form.requestSubmit();
    else htmx.trigger(form, "submit");
  }

  function agree() {
    const judge = item()?.dataset.judgeValue;
    const radio = judge && item().querySelector(`input[name="label"][value="${CSS.escape(judge)}"]`);
    if (!radio) return;
    radio.checked = true;
    save();
  }

  function toggleHelp() {
    const help = document.getElementById("key-help");
    if (help) help.hidden = !help.hidden;
  }

  document.addEventListener("keydown", (event) => {
    const typing = event.target.matches(
      "textarea, select, [contenteditable], input:not([type=radio]):not([type=checkbox]):not([type=button]):not([type=submit])"
    );
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      event.preventDefault();
      save();
      return;
    }
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "j") go(item()?.dataset.nextUrl);
    else if (event.key === "k") go(item()?.dataset.previousUrl);
    else if (event.key === "a") agree();
    else if (event.key === "c") {
      event.preventDefault();
      document.getElementById("critique")?.focus();
    } else if (event.key === "?") toggleHelp();
    else if (/^[0-9]$/.test(event.key)) pickLabel(event.key);
    else return;
    event.preventDefault();
  });

  document.addEventListener("click", (event) => {
    const action = event.target.closest("[data-action]")?.dataset.action;
    if (action === "agree") agree();
    else if (action === "help") toggleHelp();
    else if (action === "next" || action === "previous") {
      event.preventDefault();
      go(item()?.dataset[`${action}Url`]);
    }
  });

  // After a successful save the server has re-rendered this sample; move on to the next, already loaded.
  document.body.addEventListener("feedbackSaved", () => {
    const next = item()?.dataset.nextUrl;
    if (next) go(next);
  });

  window.addEventListener("popstate", () => window.location.reload());
  document.documentElement.dataset.reviewKeys = "ready"; // the keys work from here on (tests wait for it)
  prefetchNext();
})();
