// Site-wide behaviour, kept out of the templates so the Content-Security-Policy can forbid inline script:
// a form with data-confirm asks before it is sent.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset?.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
}, true);

// A button with data-copy="#id" copies that field's value (the members page's invitation links).
document.addEventListener("click", (event) => {
  const button = event.target.closest?.("[data-copy]");
  if (!button) return;
  const field = document.querySelector(button.dataset.copy);
  if (!field) return;
  field.select();
  navigator.clipboard?.writeText(field.value).then(() => { button.textContent = "Copied"; }, () => {});
});
