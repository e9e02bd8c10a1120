// Tables on a phone: each row becomes a card and each cell says which column it is, so nothing
// scrolls sideways. The column titles are copied into the cells' data-label here (a table keeps
// working as a table without this file).
"use strict";
function labelCells(table) {
  const head = table.tHead;
  if (!head || !head.rows.length) return;
  const titles = [];
  for (const th of head.rows[0].cells) {
    const text = th.textContent.replace(/[▲▼]/g, "").replace(/\s+/g, " ").trim();
    for (let i = 0; i < (th.colSpan || 1); i++) titles.push(text);
  }
  if (head.querySelector("a, button, input")) head.classList.add("active");
  for (const body of table.tBodies) {
    for (const row of body.rows) {
      let column = 0;
      for (const cell of row.cells) {
        if (!cell.hasAttribute("data-label") && titles[column]) cell.setAttribute("data-label", titles[column]);
        column += cell.colSpan || 1;
      }
    }
  }
  table.classList.add("labelled");
}
document.addEventListener("DOMContentLoaded", () => {
  for (const table of document.querySelectorAll("table.data")) labelCells(table);
});
// On paper the definitions are part of the report: open them for printing.
window.addEventListener("beforeprint", () => {
  for (const details of document.querySelectorAll("details.definitions")) details.open = true;
});
