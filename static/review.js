// Keyboard-first reviewing. Navigation is htmx's own: the Next and Previous links carry hx-get and hx-push-url,
// the preload extension fetches the next item ahead, and a save answers with the next item. The keys below
// only press those links and buttons; the criterion remembers whether it was folded, per project.
(() => {
  "use strict";
  const item = () => document.getElementById("review-item");

  function press(selector) {
    const target = item()?.querySelector(selector);
    if (target && target.checkVisibility({ visibilityProperty: true })) target.click();
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
    // requestSubmit fires a real submit event, which htmx turns into its POST (hx-sync drops a second one).
    document.getElementById("feedback-form")?.requestSubmit();
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
    if (event.key === "j") press("[data-action=next]");
    else if (event.key === "k") press("[data-action=previous]");
    else if (event.key === "u") press("[data-action=undo]");
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
  });

  // The criterion: folded or not, as the reviewer left it in this project (toggle does not bubble: capture it).
  const criterionKey = () => `memalign:criterion-folded:${item()?.dataset.project}`;
  document.addEventListener(
    "toggle",
    (event) => {
      if (event.target.id === "criterion") localStorage.setItem(criterionKey(), event.target.open ? "0" : "1");
    },
    true
  );
  function restoreCriterion() {
    const criterion = document.getElementById("criterion");
    if (criterion && localStorage.getItem(criterionKey()) === "1") criterion.open = false;
  }

  // Each item htmx swaps in: restore the criterion, and name the page after the sample. htmx puts the focus
  // back on the element with the focused one's id (the critique box): on a new sample the keys must work at once.
  let shown = item()?.dataset.sampleId;
  document.body.addEventListener("htmx:afterSettle", () => {
    if (item()?.dataset.sampleId !== shown && item()?.contains(document.activeElement)) document.activeElement.blur();
    shown = item()?.dataset.sampleId;
    restoreCriterion();
    const heading = item()?.querySelector("h1")?.textContent;
    if (heading) document.title = `${heading} · MemAlign`;
  });
  restoreCriterion();
  document.documentElement.dataset.reviewKeys = "ready"; // the keys work from here on (tests wait for it)
})();
