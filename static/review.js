// Keyboard-first reviewing. Navigation is htmx's own: the Next and Previous links carry hx-get and hx-push-url,
// the preload extension fetches the next item ahead, and a save answers with the next item. The keys below
// only press those links and buttons, and remember whether the criterion was folded, per project.
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
    radio.dispatchEvent(new Event("change", { bubbles: true })); // a judge-blind item reveals the verdict on it
    // Whatever the label, the next keys are the critique's: letters typed after a label key must never fire
    // shortcuts (an "a" in "Fail" once saved the sample as agreed, and the next ones too).
    document.getElementById("critique")?.focus();
  }

  function save() {
    // requestSubmit fires a real submit event, which htmx turns into its POST (hx-sync drops a second one).
    document.getElementById("feedback-form")?.requestSubmit();
  }

  function agree() {
    if (item()?.hasAttribute("data-verdict-hidden")) {
      note("Agree with the judge is off here: in a judge-blind first pass its verdict is hidden until you choose a label. Pick one (1, 2…), then save with Ctrl+Enter.");
      return;
    }
    const judge = item()?.dataset.judgeValue;
    if (!judge && item()) {
      note("This sample has no judge's verdict to agree with: pick a label (1, 2…), then save with Ctrl+Enter.");
      return;
    }
    const radio = judge && item().querySelector(`input[name="label"][value="${CSS.escape(judge)}"]`);
    if (!radio) return;
    // Only a reviewer who has not begun this item agrees by key: a label picked or a critique written is theirs,
    // and saving the judge's label over it would record a label nobody chose.
    const picked = item().querySelector('input[name="label"]:checked');
    const critique = document.getElementById("critique");
    if ((picked && picked !== radio) || critique?.value.trim()) {
      critique?.focus();
      return;
    }
    radio.checked = true;
    save();
  }

  // Quoting: the passage selected inside one output goes into the critique, and the form carries it (its text
  // and which output) so the server can store where it sits in the raw output (reviews/feedback.py quote).
  const sourceOf = (node) => (node?.nodeType === 1 ? node : node?.parentElement)?.closest("[data-quote-source]");

  function quoteSelection() {
    const selection = window.getSelection();
    const text = selection?.toString().trim();
    const source = text && sourceOf(selection.anchorNode);
    const critique = document.getElementById("critique");
    if (!critique) return;
    if (!source || source !== sourceOf(selection.focusNode)) {
      note("Select a passage inside one output first, then press q.");
      return;
    }
    document.getElementById("quote-text").value = text;
    document.getElementById("quote-output").value = source.dataset.quoteSource;
    showQuote(text, source.dataset.quoteSource);
    const quoted = `“${text.replace(/\s+/g, " ")}” `;
    const at = critique.selectionStart ?? critique.value.length;
    const before = critique.value.slice(0, at);
    const gap = before && !/\s$/.test(before) ? " " : "";
    critique.value = before + gap + quoted + critique.value.slice(critique.selectionEnd ?? at);
    critique.focus();
    critique.selectionStart = critique.selectionEnd = (before + gap + quoted).length;
    say("Quoted in the critique.");
  }

  function showQuote(text, which) {
    const cue = document.getElementById("quote-cue");
    if (!cue) return;
    cue.hidden = !text;
    document.getElementById("quote-shown").textContent = text.length > 200 ? `${text.slice(0, 199)}…` : text;
    const label = document.getElementById("quote-which");
    if (label) label.textContent = which.toUpperCase();
  }

  function unquote() {
    document.getElementById("quote-text").value = "";
    document.getElementById("quote-output").value = "";
    showQuote("", "");
    say("The quote is removed (the critique's text stays as you wrote it).");
  }

  function say(news) {
    const announcer = document.getElementById("announcer");
    if (announcer) announcer.textContent = news;
  }

  // A key that cannot do what it says shows why beside the form (and tells screen readers); the next item clears it.
  function note(news) {
    const shown = document.getElementById("key-note");
    if (shown) {
      shown.textContent = news;
      shown.hidden = false;
    }
    say(news);
  }

  function toggleHelp() {
    const help = document.getElementById("key-help");
    if (help) help.hidden = !help.hidden;
  }

  const TEXT_FIELDS =
    "textarea, select, [contenteditable], input:not([type=radio]):not([type=checkbox]):not([type=button]):not([type=submit])";

  // While focus is in a text field the single-key shortcuts are off, and the page says so.
  function showTyping() {
    const typing = Boolean(document.activeElement?.matches?.(TEXT_FIELDS));
    document.documentElement.dataset.typing = typing ? "yes" : "no";
    // visibility, not display: the cue keeps its room, so nothing under it moves as a click leaves the box
    document.getElementById("typing-cue")?.classList.toggle("on", typing);
  }
  document.addEventListener("focusin", showTyping);
  document.addEventListener("focusout", () => setTimeout(showTyping, 0)); // after the focus has landed

  // A label key pressed while a save is on its way is meant for the next item (the reviewer has moved on); it
  // used to land in the critique box being sent, and was lost. It is held, and picked once the next item is in.
  let saving = null; // the sample id of the item whose save is on its way
  let heldKey = null;
  document.body.addEventListener("htmx:beforeRequest", (event) => {
    if (event.detail.elt?.id !== "feedback-form") return;
    saving = item()?.dataset.sampleId ?? null;
    heldKey = null;
  });
  const dropHeld = () => {
    saving = heldKey = null;
  };
  document.body.addEventListener("htmx:sendError", dropHeld);
  document.body.addEventListener("htmx:responseError", dropHeld);

  function pickHeldLabel(element) {
    // Only on another item: a refused save (422) shows the same item again, and its error comes first.
    if (heldKey && saving && element.dataset.sampleId !== saving) pickLabel(heldKey);
    dropHeld();
  }

  document.addEventListener("keydown", (event) => {
    const typing = event.target.matches(TEXT_FIELDS);
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      event.preventDefault();
      save();
      return;
    }
    if (saving && /^[0-9]$/.test(event.key) && !(event.ctrlKey || event.metaKey || event.altKey)) {
      event.preventDefault();
      heldKey = event.key;
      say(`Label key ${event.key}: picked on the next item once it is shown.`);
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
    else if (event.key === "q") quoteSelection();
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
    else if (action === "unquote") unquote();
  });

  // The criterion: folded or not, as the reviewer left it in this project. A cookie scoped to the project's
  // pages carries it, so the server renders each item that way (toggle does not bubble: capture it).
  document.addEventListener(
    "toggle",
    (event) => {
      if (!event.target.matches?.("[data-criterion]")) return;
      const folded = event.target.open ? "" : "1";
      const path = `/p/${encodeURIComponent(item()?.dataset.project || "")}/`;
      document.cookie = `memalign-criterion-folded=${folded}; path=${path}; max-age=31536000; SameSite=Lax`;
    },
    true
  );

  // htmx gives the focus back to the element with the focused one's id (the critique box) after a swap: on a
  // new item (a 200; a refused save is a 422 and keeps it) the keys must work at once, so let go of it first.
  document.body.addEventListener("htmx:beforeSwap", (event) => {
    // Only a new item: the verdict revealed inside this one (judge-blind first pass) leaves the cursor where it is.
    const newItem = event.detail.target?.id === "review-item";
    if (newItem && event.detail.xhr.status === 200 && item()?.contains(document.activeElement)) {
      document.activeElement.blur();
    }
  });
  // A region that stays in the page announces what the swapped item says: a save, an undo, a refusal.
  function announce() {
    const news = item()?.querySelector("#feedback-error, #saved-cue, #coaching");
    const announcer = document.getElementById("announcer");
    if (announcer) announcer.textContent = news ? news.textContent.replace(/\s+/g, " ").trim() : "";
  }
  htmx.onLoad((element) => {
    showTyping();
    if (element.id === "review-item") {
      announce();
      pickHeldLabel(element);
    }
    const heading = element.id === "review-item" && element.querySelector("h1")?.textContent;
    if (heading) document.title = `${heading} · MemAlign`;
  });
  document.documentElement.dataset.reviewKeys = "ready"; // the keys work from here on (tests wait for it)
})();
