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
  // The specialist judging condition 2 opens the scans.
  const scan = await office.locator("a.scan", { hasText: "application.pdf" }).getAttribute("href");
  const opened = await office.evaluate(async (href) => (await fetch(href)).text(), scan);
  check(opened === "the application form, at the office", "the scan opens from the registration");
  await shoot(office, "staff-office-reception");

  // The specialist's queue has it next.
  const specialist = await (await browser.newContext()).newPage();
  await staffLogin(specialist, base, "specialist-1");
  await until(specialist, `${base}staff`,
    async (p) => (await p.locator(`tr[data-registration="${registration}"]`).count()) === 1, "the specialist's queue");
  check((await specialist.getByRole("form", { name: /paragraph 3/ }).count()) === 0, "only the office receives");

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

  // Ended (refused at condition 2, handed out at the office), it is still listed and opens.
  await specialist.goto(`${base}staff/registrations/${registration}`);
  await specialist.getByLabel("No", { exact: true }).check();
  await specialist.getByLabel("Refusal ground").selectOption("incomplete-package");
  await specialist.getByRole("button", { name: "Do the step and sign" }).click();
  await specialist.locator("p.flash").waitFor();
  await until(office, `${base}staff/registrations/${registration}`,
    async (p) => (await text(p, "#step-title")).startsWith("office-issue"), "the refusal at the office");
  await office.getByRole("button", { name: "Do the step and sign" }).click();
  await office.locator("p.flash").waitFor();
  await viewer.goto(`${base}applications?state=ended&outcome=refused`);
  check((await viewer.locator(`#applications tr[data-application="${id}"]`).count()) === 1, "ended, still listed");
  await viewer.locator(`#applications tr[data-application="${id}"] a`).click();
  check((await text(viewer, "#state")) === "Outcome: refused", "its page shows the outcome");
  check((await viewer.locator('table.path tr[data-step="office-issue"]').count()) === 1, "handed out at the office");
  await shoot(viewer, "application-office");
});
console.log("office: passed");
