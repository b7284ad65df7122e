// (c) The process-4 notice: the applicant is absent from "Individuals", the
// application ends at condition 1 with the notice in the three languages.
// Usage: node notice.mjs CONSOLE_URL
import { accessible, check, openForm, operatorLogin, reason, shoot, text, withBrowser } from "./lib.mjs";

const base = process.argv[2];
if (!base) throw new Error("usage: node notice.mjs CONSOLE_URL");

await withBrowser(async (browser) => {
  const page = await (await browser.newContext()).newPage();
  await operatorLogin(page, base);
  const id = await openForm(page, base, "880101300111");
  check((await text(page, "#state")) === "Outcome: data unavailable", "the application ended: data-unavailable");
  const notice = page.locator("section.notice");
  check((await notice.getAttribute("data-code")) === "process-4.applicant-not-found", "the process-4 notice");
  const english = await text(page, "section.notice p");
  check(english.length > 10, `the notice in English: ${english}`);
  check((await page.getByRole("button", { name: "Sign and submit (processes 5-6)" }).count()) === 0,
    "no documents to attach");
  await shoot(page, "operator-notice");
  await accessible(page, "the notice");
  await page.getByRole("link", { name: "Русский" }).click();
  const russian = await text(page, "section.notice p");
  check(russian !== english && /[а-я]/.test(russian), `the notice in Russian: ${russian}`);
  await page.getByRole("link", { name: "Қазақша" }).click();
  const kazakh = await text(page, "section.notice p");
  check(kazakh !== russian && kazakh !== english, `the notice in Kazakh: ${kazakh}`);
  await page.getByRole("link", { name: "English" }).click();

  await page.goto(`${base}applications/${id}`);
  const path = await page.locator("table.path tbody tr[data-step]").evaluateAll(
    (rows) => rows.map((row) => row.getAttribute("data-step")));
  check(JSON.stringify(path) === JSON.stringify(["process-1", "process-2", "process-3", "condition-1", "process-4"]),
    `the path ${path}`);
  check((await page.locator('svg.diagram g.step.done[data-step="process-4"]').count()) === 1, "the diagram marks process 4");
  check((await page.locator('svg.diagram g.step.done[data-step="process-5"]').count()) === 0, "and not process 5");
  const verified = await page.locator('#messages li.signature[data-verified="true"]').count();
  check(verified >= 4 && verified === (await page.locator("#messages li.signature").count()),
    `the look-ups' messages verified (${verified})`);
  // A form opened and never submitted, withdrawn by the operator.
  const withdrawn = await openForm(page, base, "850715300122");
  // Without a reason or the confirmation the browser does not send the form; sent anyway, the console refuses it.
  const withdrawal = page.locator("form[action$='/withdraw']");
  await page.getByRole("button", { name: "Withdraw the application" }).click();
  check(await page.locator("#reason").evaluate((field) => !field.validity.valid), "the reason is required");
  await withdrawal.evaluate((form) => { form.noValidate = true; });
  await page.getByRole("button", { name: "Withdraw the application" }).click();
  check((await reason(page, "#withdraw-problem")) === "console.required", "no reason: console.required");
  await page.getByLabel("Reason", { exact: true }).fill("the applicant left");
  await withdrawal.evaluate((form) => { form.noValidate = true; });
  await page.getByRole("button", { name: "Withdraw the application" }).click();
  check((await reason(page, "#withdraw-problem")) === "console.confirm", "not confirmed: console.confirm");
  check((await text(page, "#state")).startsWith("process-5"), "nothing withdrawn");
  await page.getByLabel("Reason", { exact: true }).fill("the applicant left");
  await page.getByLabel("I confirm the withdrawal: it cannot be undone").check();
  await page.getByRole("button", { name: "Withdraw the application" }).click();
  check((await text(page, "#state")) === "Outcome: withdrawn", "withdrawn");
  const row = page.locator('table.path tr[data-step="withdrawal"]');
  check((await row.count()) === 1, "the withdrawal is the path's last row");
  check((await row.textContent()).includes("the applicant left") && (await row.textContent()).includes("operator-1"),
    "with its reason and the operator");
  check((await page.getByRole("button", { name: "Sign and submit (processes 5-6)" }).count()) === 0, "nothing to submit");
  check(withdrawn !== id, "another application");

  await page.goto(`${base}applications?outcome=data-unavailable`);
  check((await page.locator(`#applications tr[data-application="${id}"]`).count()) === 1, "listed by its outcome");
});
console.log("notice: passed");
