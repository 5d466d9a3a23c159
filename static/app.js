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

// A form marked data-progress goes by XMLHttpRequest, so a <progress> can show the upload
// (fetch cannot). A redirect's page is then opened; any other answer (422, 413) replaces
// <main>. Without this script the form posts as it is.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const bar = form.matches("form[data-progress]") && form.querySelector("progress");
  if (!bar || event.defaultPrevented) return;
  event.preventDefault();
  const data = new FormData(form);
  const button = event.submitter;
  if (button && button.name) data.append(button.name, button.value);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.action);
  xhr.upload.addEventListener("progress", (e) => {
    if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; }
  });
  xhr.addEventListener("load", () => {
    if (xhr.responseURL && xhr.responseURL !== form.action) {
      location.assign(xhr.responseURL);
      return;
    }
    const main = new DOMParser().parseFromString(xhr.responseText, "text/html").querySelector("main");
    if (!main) return location.reload();
    document.querySelector("main").replaceWith(main);
    if (window.htmx) htmx.process(main);
    (main.querySelector("[role=alert]") || main).scrollIntoView();
  });
  xhr.addEventListener("error", () => {
    bar.previousElementSibling.textContent = "No se pudo enviar. Revise su conexión e inténtelo de nuevo.";
    form.querySelectorAll("button").forEach((b) => { b.disabled = false; });
  });
  bar.parentElement.hidden = false;
  form.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  xhr.send(data);
});

// A textarea with maxlength and data-quedan="ID" keeps element ID saying how many
// characters are left (the server renders the same words for the page as sent).
document.addEventListener("input", (event) => {
  const field = event.target;
  if (!field.matches("textarea[data-quedan]")) return;
  const left = document.getElementById(field.dataset.quedan);
  if (!left || field.maxLength < 0) return;
  const n = Math.max(field.maxLength - field.value.length, 0);
  left.textContent = `Quedan ${n} ${n === 1 ? "carácter" : "caracteres"}.`;
});

// A select with data-insertar="ID" copies its chosen option's data-texto into the
// textarea ID (a saved reply); without this script its "Usar" button reloads the page.
document.addEventListener("change", (event) => {
  const select = event.target;
  if (!select.matches("select[data-insertar]")) return;
  const option = select.selectedOptions[0];
  const target = document.getElementById(select.dataset.insertar);
  if (!option || !option.dataset.texto || !target) return;
  target.value = option.dataset.texto;
  target.focus();
});
