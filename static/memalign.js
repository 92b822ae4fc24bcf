// Site-wide behaviour, kept out of the templates so the Content-Security-Policy can forbid inline script:
// a form with data-confirm asks before it is sent.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset?.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
}, true);
