// (d) An incident's retry: a delivery to the ARM that failed every attempt
// is listed, retried with its button, and delivered.
// Usage: node incident.mjs CONSOLE_URL APPLICATION_ID
import { accessible, check, shoot, text, until, withBrowser } from "./lib.mjs";

const [base, id] = process.argv.slice(2);
if (!base || !id) throw new Error("usage: node incident.mjs CONSOLE_URL APPLICATION_ID");

await withBrowser(async (browser) => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${base}incidents?all=yes`);
  const row = page.locator(`#incidents tr[data-application="${id}"]`);
  check((await row.count()) === 1, "the incident is listed");
  check((await row.textContent()).includes("rshep-astana"), "to the ARM");
  check((await row.getAttribute("data-incident")) === "true", "parked as an incident");
  // The operator's page of the application says its delivery is failing.
  const tester = await (await browser.newContext()).newPage();
  await tester.goto(`${base}operator`);
  await tester.getByLabel("Login", { exact: true }).fill("operator-1");
  await tester.getByLabel("Password", { exact: true }).fill("operator-1-password");
  await tester.getByRole("button", { name: "Log in" }).click();
  await tester.goto(`${base}operator/applications/${id}`);
  const hint = tester.locator('p.pending[data-target="rshep-astana"]');
  check((await hint.count()) === 1 && (await hint.textContent()).includes("Delivery pending"), "the operator sees the delivery failing");
  await shoot(page, "incidents");
  await accessible(page, "the incidents");
  await page.getByRole("button", { name: `Retry ${id}` }).click();
  check((await text(page, "p.flash")).includes(id), "retried");
  check(page.url().endsWith("/incidents?all=yes") && (await page.locator("#all").isChecked()),
    "the list still shows every pending delivery");
  // Delivered, the row goes from the open page by itself.
  await page.evaluate(() => { window.egovNotReloaded = true; });
  // (The ARM's report of the registration may pass through its outbox meanwhile: a row of its own, for a moment.)
  await page.waitForFunction((id) => !document.querySelector(`#incidents tr[data-application="${id}"]`), id, { timeout: 20_000 });
  check((await page.locator("#no-incidents").count()) === 1, "no incidents left");
  check(await page.evaluate(() => window.egovNotReloaded === true), "the incidents page followed without a reload");
  await until(page, `${base}applications/${id}`, async (p) => (await text(p, "#registration")).length > 0,
    "the registration at the ARM");
  check((await text(page, "#state")).startsWith("action-1"), "registered: waits on the office (action 1)");
  // A retry of what is no longer there is refused with its reason, and nothing changes (the
  // form carries this browser's token, as every form of the console does: the log-in form's).
  await page.goto(`${base}operator`);
  const token = await page.locator('input[name="csrf"]').first().getAttribute("value");
  await page.goto(`${base}incidents`);
  await page.evaluate((token) => {
    const form = document.createElement("form");
    form.method = "post";
    form.action = "/incidents/retry";
    for (const [name, value] of [["csrf", token], ["participant", "gateway"], ["id", "999999"]]) {
      const input = document.createElement("input");
      input.type = "hidden"; input.name = name; input.value = value; form.appendChild(input);
    }
    document.body.appendChild(form);
    form.submit();
  }, token);
  await page.locator("#retry-problem").waitFor();
  const code = await page.locator("#retry-problem").getAttribute("data-code");
  check(code === "admin.unknown_outbox_item", `an unknown id is refused (${code})`);
});
console.log("incident: passed");
