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
  const documents = await office.locator("table:has(td:text-is('application.pdf'))").count();
  check(documents === 1, "the documents came with it");
  await shoot(office, "staff-office-reception");

  // The specialist's queue has it next.
  const specialist = await (await browser.newContext()).newPage();
  await staffLogin(specialist, base, "specialist-1");
  await until(specialist, `${base}staff`,
    async (p) => (await p.locator(`tr[data-registration="${registration}"]`).count()) === 1, "the specialist's queue");
  check((await specialist.getByRole("form", { name: /paragraph 3/ }).count()) === 0, "only the office receives");
});
console.log("office: passed");
