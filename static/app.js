// The portal's only hand-written script; every page works without it.
// htmx cannot call showModal(): a <dialog data-modal> it swaps in arrives with the open
// attribute (non-modal, Tab walks out into the page behind), so reopen it as a modal.
document.addEventListener("htmx:after:swap", () => {
  for (const dialog of document.querySelectorAll("dialog[data-modal][open]")) {
    if (!dialog.matches(":modal")) {
      dialog.close();
      dialog.showModal();
    }
  }
});
