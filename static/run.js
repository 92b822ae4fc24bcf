// A run's page: the verdict table fills in while the run goes, and once more when it ends. The progress poll's
// reply announces "runProgress" with how many samples are judged; the table reloads its first page when that
// number changed, unless the reader opened an explanation or asked for more rows (a reload would take them away).
(() => {
  let shown = null;
  let paging = false;
  document.body.addEventListener("runProgress", (event) => {
    const rows = document.getElementById("verdict-rows");
    if (!rows || event.detail.judged === shown || paging) return;
    if (rows.querySelector(".explanation-row td:not(:empty)")) return;
    shown = event.detail.judged;
    htmx.ajax("GET", window.location.pathname + window.location.search, { target: "#verdict-rows", swap: "outerHTML" });
  });
  document.body.addEventListener("htmx:beforeRequest", (event) => {
    if (event.detail.elt?.closest?.("#more-verdicts")) paging = true;
  });
})();
