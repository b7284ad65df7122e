// Paragraph 3: an application received at the provider's office, its
// documents attached with the file picker and signed by the office employee;
// bad input is refused next to its field and registers nothing.
// Usage: node office.mjs CONSOLE_URL
import { accessible, check, reason, shoot, staffLogin, text, until, withBrowser } from "./lib.mjs";

const base = process.argv[2];
if (!base) throw new Error("usage: node office.mjs CONSOLE_URL");

await withBrowser(async (browser) => {
  const office = await (await browser.newContext()).newPage();
  await staffLogin(office, base, "office-1");
  const form = office.getByRole("form", { name: "Receive an application at the provider's office (paragraph 3)" });
  check((await form.count()) === 1, "the office has the reception form");
  await accessible(office, "the office's page");
  const queued = await office.locator("tr[data-registration]").count();

  // The power of attorney's file is required, and marked so, as soon as a representative's IIN is
  // typed in, before anything is sent; cleared, it is not.
  const poa = office.locator("#office-doc-power-of-attorney");
  const mark = office.locator('[data-mark-for="office-doc-power-of-attorney"]');
  check(!(await poa.evaluate((input) => input.required)) && !(await mark.isVisible()), "no representative: not required");
  await office.locator("#office-representative").pressSequentially("9001");
  check(await poa.evaluate((input) => input.required), "a representative typed in: the power of attorney is required");
  check((await poa.getAttribute("aria-required")) === "true" && (await mark.isVisible()), "and marked required");
  await office.locator("#office-representative").fill("");
  check(!(await poa.evaluate((input) => input.required)) && !(await mark.isVisible()), "cleared: not required again");

  // An empty IIN, then a wrong one: each refused next to the field; nothing registered.
  await office.getByRole("button", { name: "Receive and sign" }).click();
  check((await reason(office, "#office-applicant-problem")) === "console.required", "an empty IIN is refused");
  await office.getByLabel("Applicant's IIN", { exact: true }).fill("850715300123");
  await office.getByRole("button", { name: "Receive and sign" }).click();
  const code = await reason(office, "#office-applicant-problem");
  check(code.startsWith("iin."), `a wrong IIN is refused (${code})`);
  check((await office.locator("tr[data-registration]").count()) === queued, "nothing was registered");

  // The package received and signed: registered at the ARM, action 1 done by office-1.
  await office.getByLabel("Applicant's IIN", { exact: true }).fill("850715300122");
  await office.setInputFiles("#office-doc-application-form", {
    name: "application.pdf", mimeType: "application/pdf", buffer: Buffer.from("the application form, at the office"),
  });
  await office.setInputFiles("#office-doc-identity-document", {
    name: "identity.pdf", mimeType: "application/pdf", buffer: Buffer.from("the identity card, at the office"),
  });
  await office.getByRole("button", { name: "Receive and sign" }).click();
  const flash = await text(office, "p.flash");
  check(flash.startsWith("Received at the office: RSHEP-"), `registered (${flash})`);
  const registration = flash.slice(flash.indexOf("RSHEP-"));
  const path = await office.locator("table").last().textContent();
  check(path.includes("action-1") && path.includes("office-1"), "action 1 by office-1 is on the path");
  const documents = await office.locator("table:has(a.scan:text-is('application.pdf'))").count();
  check(documents === 1, "the documents came with it");
  // The executor reviewing the package at action 2 opens the scans.
  const scan = await office.locator("a.scan", { hasText: "application.pdf" }).getAttribute("href");
  const opened = await office.evaluate(async (href) => (await fetch(href)).text(), scan);
  check(opened === "the application form, at the office", "the scan opens from the registration");
  await shoot(office, "staff-office-reception");

  // At the office the route is actions 1-4: the executor's queue has it next, the specialist's never does.
  const executor = await (await browser.newContext()).newPage();
  await staffLogin(executor, base, "executor-1");
  await until(executor, `${base}staff`,
    async (p) => (await p.locator(`tr[data-registration="${registration}"]`).count()) === 1, "the executor's queue");
  check((await executor.getByRole("form", { name: /paragraph 3/ }).count()) === 0, "only the office receives");
  await staffLogin(executor, base, "specialist-1");
  check((await executor.locator(`tr[data-registration="${registration}"]`).count()) === 0, "not the specialist's");
  await staffLogin(executor, base, "executor-1");

  // Applications lists it, and its own page opens from there, from the staff's "Tester's view" too.
  const id = await text(office, "#application-id");
  const viewer = await (await browser.newContext()).newPage();
  await viewer.goto(`${base}applications`);
  await viewer.locator(`#applications tr[data-application="${id}"] a`).click();
  await viewer.locator("#application-id").waitFor();
  check((await text(viewer, "#application-id")) === id, "the office's application has its page");
  check((await text(viewer, "#registration")) === registration, "with its registration");
  check((await viewer.locator('table.path tr[data-step="action-1"]').count()) === 1, "its path");
  check((await viewer.locator('svg.timeline g[data-step="action-1"]').count()) === 1, "its timeline");
  check((await viewer.locator('section.log[data-participant="regional"] tr.message').count()) >= 1, "its messages");
  await office.getByRole("link", { name: "Tester's view" }).click();
  check((await text(office, "#application-id")) === id, "the staff's tester's view opens it");

  // Action 2 at the office: the executor permits or refuses, a package that does not comply on paragraph 9's
  // grounds (condition 2's, lent by the channel) besides action 2's own; no condition-2 form.
  await executor.goto(`${base}staff/registrations/${registration}`);
  check((await text(executor, "#step-title")).startsWith("action-2"), "the office's application waits on action 2");
  check((await executor.getByLabel("Permit", { exact: true }).count()) === 1, "action 2 offers to permit");
  const grounds = await executor.getByLabel("Refusal ground").locator("option").allTextContents();
  check(grounds.some((g) => g.startsWith("incomplete-package")), "paragraph 9's grounds at action 2 (the office's)");
  check(grounds.some((g) => g.startsWith("harm-to-child")), "and action 2's own");
  await shoot(executor, "staff-office-action-2");
  await executor.getByLabel("Refuse", { exact: true }).check();
  await executor.getByLabel("Refusal ground").selectOption("incomplete-package");
  await executor.getByRole("button", { name: "Do the step and sign" }).click();
  check((await text(executor, "p.flash")).includes("action-2 executor-1"), "action 2 refused by the executor");
  // Action 3: the executor hands the refused draft over, the head signs it; action 4 and the hand-out at the office.
  await executor.goto(`${base}staff/registrations/${registration}`);
  await executor.getByRole("button", { name: "Hand the draft over to the head" }).click();
  await executor.locator("p.flash").waitFor();
  await staffLogin(executor, base, "head-1");
  await executor.goto(`${base}staff/registrations/${registration}`);
  check((await executor.locator("p.result").getAttribute("data-outcome")) === "refused", "the head signs a refusal");
  await executor.getByRole("button", { name: "Sign the result (EDS)" }).click();
  check((await text(executor, "p.flash")).includes("action-3 head-1"), "signed by the head");
  for (const step of ["action-4", "office-issue"]) {
    await until(office, `${base}staff/registrations/${registration}`,
      async (p) => (await text(p, "#step-title")).startsWith(step), `${step} at the office`);
    await office.getByRole("button", { name: "Do the step and sign" }).click();
    check((await text(office, "p.flash")).includes(`${step} office-1`), `${step} done by the office`);
  }
  // Ended (refused at action 2, handed out at the office), it is still listed and opens.
  await viewer.goto(`${base}applications?state=ended&outcome=refused`);
  check((await viewer.locator(`#applications tr[data-application="${id}"]`).count()) === 1, "ended, still listed");
  await viewer.locator(`#applications tr[data-application="${id}"] a`).click();
  check((await text(viewer, "#state")) === "Outcome: refused", "its page shows the outcome");
  check((await viewer.locator('table.path tr[data-step="office-issue"]').count()) === 1, "handed out at the office");
  const route = await viewer.locator("table.path tbody tr[data-step]").evaluateAll(
    (rows) => rows.map((row) => row.getAttribute("data-step")));
  check(JSON.stringify(route) === JSON.stringify(["action-1", "action-2", "action-3", "action-4", "office-issue"]),
    `the office's route is actions 1-4 (${route})`);
  await shoot(viewer, "application-office");
});
console.log("office: passed");
