// The console's one script, a progressive enhancement: pages work without it.
// A form whose submit button says data-busy is marked busy while it is sent,
// so a second press does not sign the step twice.
document.addEventListener("submit", (event) => {
  const button = event.target.querySelector("button[type=submit]");
  if (button) {
    setTimeout(() => { button.disabled = true; button.setAttribute("aria-busy", "true"); }, 0);
  }
});
// The representative's power-of-attorney fields only matter when notarised.
document.addEventListener("change", (event) => {
  if (event.target.id === "notarised") {
    for (const id of ["poa_number", "poa_issued_on"]) {
      const field = document.getElementById(id);
      if (field) field.required = event.target.checked;
    }
  }
});
// A field required only with a choice (the refusal ground with "no"): data-required-with names the choice's id.
document.addEventListener("change", (event) => {
  if (event.target.type !== "radio") return;
  for (const field of document.querySelectorAll("[data-required-with]")) {
    const choice = document.getElementById(field.dataset.requiredWith);
    field.required = Boolean(choice && choice.checked);
  }
});
