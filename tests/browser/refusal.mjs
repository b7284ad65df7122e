// (b) A refusal at condition 2: the specialist finds the documents do not
// comply; the ARM forms process 8's refusal as a draft and hands it to that
// specialist, who signs its exact bytes; the operator hands it over.
// Usage: node refusal.mjs CONSOLE_URL
import {
  accessible, attachAndSubmit, check, onlyFor, openForm, openFromQueue, operatorLogin, reason, shoot, staffLogin, text,
  until, withBrowser,
} from "./lib.mjs";

const base = process.argv[2];
if (!base) throw new Error("usage: node refusal.mjs CONSOLE_URL");

await withBrowser(async (browser) => {
  const operator = await (await browser.newContext()).newPage();
  const staff = await (await browser.newContext()).newPage();
  await operatorLogin(operator, base);
  const id = await openForm(operator, base, "900101400122");
  check((await text(operator, "#lookup")).includes("Нурланова"), "the look-up found the applicant");
  await attachAndSubmit(operator);

  await openFromQueue(staff, base, "office-1", id);
  await staff.getByRole("button", { name: "Do the step and sign" }).click();

  await openFromQueue(staff, base, "specialist-1", id);
  const registration = staff.url();
  const grounds = await staff.getByLabel("Refusal ground").locator("option").allTextContents();
  check(grounds.some((g) => g.startsWith("incomplete-package")), "the grounds of condition 2 are offered");
  check(!grounds.some((g) => g.startsWith("harm-to-child")), "not the grounds of action 2");
  // "No" without a ground: the browser does not send it (the ground is required with "no"); sent anyway, the
  // console refuses it next to the decision, and nothing changed.
  await staff.getByLabel("No", { exact: true }).check();
  check(await staff.locator("#ground").evaluate((field) => field.required), "the ground is required with no");
  await staff.getByRole("button", { name: "Do the step and sign" }).click();
  check(await staff.locator("#ground").evaluate((field) => !field.validity.valid), "the browser wants the ground");
  await staff.locator("form[action$='/act']").evaluate((form) => { form.noValidate = true; });
  await staff.getByRole("button", { name: "Do the step and sign" }).click();
  const code = await reason(staff, "#decision-problem");
  check(code === "console.required", `a refusal without a ground is refused (${code})`);
  check((await text(staff, "#step-title")).startsWith("condition-2"), "still at condition 2");
  await shoot(staff, "staff-refusal-ground");
  await staff.getByLabel("No", { exact: true }).check();
  await staff.getByLabel("Refusal ground").selectOption("incomplete-package");
  await staff.getByRole("button", { name: "Do the step and sign" }).click();
  check((await text(staff, "p.flash")).includes("condition-2"), "condition 2 answered no");

  // Process 8: the ARM formed the refusal as a draft and hands it to the specialist who decided condition 2.
  await openFromQueue(staff, base, "specialist-1", id);
  check((await text(staff, "#step-title")).startsWith("process-8"), "the refusal waits on the specialist");
  check((await staff.locator("p.result").getAttribute("data-outcome")) === "refused", "the draft is a refusal");
  check((await text(staff, "p.result")).includes("incomplete"), "with its ground");
  const digest = await text(staff, "#draft-digest");
  check(/^SHA-256: [0-9a-f]{64}$/.test(digest), `the draft's digest is shown (${digest})`);
  check((await staff.locator("#decision-yes").count()) === 0, "signing the refusal takes no decision");
  await accessible(staff, "the signing of the refusal");
  await shoot(staff, "staff-refusal-sign");
  // Only the specialist who decided signs it; the office and the head see it read-only, waiting on the specialist.
  await onlyFor(staff, base, registration, "specialist-1", "process 8");
  await staffLogin(staff, base, "head-1");
  await staff.goto(registration);
  check((await text(staff, "#next-actor")) === "provider's specialist", "the head is told it waits on the specialist");
  check((await text(staff, "#signer")) === "specialist-1", "and on which one");
  await staffLogin(staff, base, "specialist-1");
  await staff.goto(registration);
  check((await text(staff, "#draft-digest")) === digest, "the same draft");
  await staff.getByRole("button", { name: "Sign the refusal (EDS)" }).click();
  check((await text(staff, "p.flash")).includes("process-8 specialist-1"), "process 8 signed by specialist-1");
  await staff.goto(registration);
  check((await staff.locator('table.path tr[data-step="process-8"]').textContent()).includes("specialist-1"),
    "the path has process 8 by specialist-1");

  // Signed, the refusal went back: the application waits on the State Corporation (process 9), no staff form.
  for (const member of ["specialist-1", "office-1", "head-1"]) {
    await staffLogin(staff, base, member);
    await staff.goto(registration);
    check((await staff.locator("form[action$='/act']").count()) === 0, `after the refusal ${member} has no step form`);
    check((await text(staff, "#next-actor")).length > 0, `${member} is told whom it waits on`);
  }

  await until(operator, `${base}operator/applications/${id}`,
    async (p) => (await p.getByRole("button", { name: "Take a queue ticket" }).count()) > 0, "the refusal at the workstation");
  await operator.getByRole("button", { name: "Take a queue ticket" }).click();
  await operator.getByRole("button", { name: "Call the next ticket" }).click();
  await operator.getByRole("button", { name: "Hand the result over" }).click();
  check((await text(operator, "#state")) === "Outcome: refused", "handed over: refused");
  const notice = operator.locator("section.notice");
  check((await notice.getAttribute("data-code")) === "process-8.refusal", "the notice of process 8");

  await operator.goto(`${base}applications/${id}`);
  check((await operator.locator('svg.timeline g[data-step="process-8"]').count()) === 1, "the timeline has process 8");
  check((await operator.locator('svg.timeline g[data-step="action-2"]').count()) === 0, "and no action 2");
  check((await operator.locator('svg.diagram g.step.done[data-step="process-8"]').count()) === 1, "the diagram too");
  const path = await operator.locator("table.path tbody tr[data-step]").evaluateAll(
    (rows) => rows.map((row) => row.getAttribute("data-step")));
  check(JSON.stringify(path) === JSON.stringify(["process-1", "process-2", "process-3", "condition-1", "process-5",
    "process-6", "process-7", "action-1", "condition-2", "process-8", "process-9"]), `the path ${path}`);
  check((await operator.locator("table.path").textContent()).includes("incomplete-package"), "the ground is on the path");
  await shoot(operator, "application-refused");
});
console.log("refusal: passed");
