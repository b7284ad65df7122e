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
// A field required as soon as another is filled in, while it is typed (the power of attorney's
// file once a representative's IIN is typed): data-required-if-filled names the other's id, its
// "(required)" mark is [data-mark-for] the field, and data-required-with-checked a box it also needs.
function requireIfFilled() {
  for (const field of document.querySelectorAll("[data-required-if-filled]")) {
    const other = document.getElementById(field.dataset.requiredIfFilled);
    const box = field.dataset.requiredWithChecked && document.getElementById(field.dataset.requiredWithChecked);
    const needed = Boolean(other && other.value.trim() !== "") && (!box || box.checked);
    field.required = needed;
    if (needed) field.setAttribute("aria-required", "true"); else field.removeAttribute("aria-required");
    for (const mark of document.querySelectorAll(`[data-mark-for="${CSS.escape(field.id)}"]`)) mark.hidden = !needed;
  }
}
document.addEventListener("input", requireIfFilled);
document.addEventListener("change", requireIfFilled);
document.addEventListener("DOMContentLoaded", requireIfFilled);
// A field required only with a choice (the refusal ground with "no"): data-required-with names the choice's id.
document.addEventListener("change", (event) => {
  if (event.target.type !== "radio") return;
  for (const field of document.querySelectorAll("[data-required-with]")) {
    const choice = document.getElementById(field.dataset.requiredWith);
    field.required = Boolean(choice && choice.checked);
  }
});
// A live page (body data-live: its path) hears from the console when what it shows has changed
// (server-sent events, /live) and swaps its live regions ([data-live], by id) for the page's
// current ones: the page runs no loop of its own.
/// What the person changed in the region's fields (by id): kept across a live swap.
function entered(region) {
  const typed = new Map();
  for (const field of region.querySelectorAll("input[id], select[id], textarea[id]")) {
    if (field.type === "hidden" || field.type === "file") continue;
    if (field.type === "checkbox" || field.type === "radio") {
      if (field.checked !== field.defaultChecked) typed.set(field.id, { checked: field.checked });
    } else if (field.tagName === "SELECT") {
      if ([...field.options].some((option) => option.selected !== option.defaultSelected)) typed.set(field.id, { value: field.value });
    } else if (field.value !== field.defaultValue) {
      typed.set(field.id, { value: field.value });
    }
  }
  return typed;
}

function restore(region, typed) {
  for (const [id, state] of typed) {
    const field = region.querySelector(`#${CSS.escape(id)}`);
    if (!field) continue;
    if ("checked" in state) field.checked = state.checked; else field.value = state.value;
    field.dispatchEvent(new Event("change", { bubbles: true }));
  }
}

const live = document.body.dataset.live;
if (live && window.EventSource) {
  const source = new EventSource(`/live?page=${encodeURIComponent(live)}`);
  let busy = false;
  let again = false;
  const refresh = async () => {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const path = location.pathname === live ? location.pathname + location.search : live;
      const answer = await fetch(path, { headers: { "X-Egov-Live": "1" } });
      if (answer.ok) {
        const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
        for (const region of document.querySelectorAll("[data-live]")) {
          const replacement = fresh.getElementById(region.id);
          // Unchanged, the region stays as it is (and so does what the person is filling in).
          if (!replacement || !region.id || replacement.outerHTML === region.outerHTML) continue;
          const typed = entered(region);
          const focused = document.activeElement && document.activeElement.id;
          const added = document.importNode(replacement, true);
          region.replaceWith(added);
          restore(added, typed);
          if (focused && added.querySelector(`#${CSS.escape(focused)}`)) added.querySelector(`#${CSS.escape(focused)}`).focus();
        }
        document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
      }
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  };
  source.addEventListener("changed", refresh);
}
