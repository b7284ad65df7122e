// (d) An incident's retry: a delivery to the ARM that failed every attempt
// is listed, retried with its button, and delivered.
// Usage: node incident.mjs CONSOLE_URL APPLICATION_ID
import { accessible, check, shoot, text, until, withBrowser } from "./lib.mjs";

const [base, id] = process.argv.slice(2);
if (!base || !id) throw new Error("usage: node incident.mjs CONSOLE_URL APPLICATION_ID");

await withBrowser(async (browser) => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${base}incidents`);
  const row = page.locator(`#incidents tr[data-application="${id}"]`);
  check((await row.count()) === 1, "the incident is listed");
  check((await row.textContent()).includes("rshep-astana"), "to the ARM");
  check((await row.getAttribute("data-incident")) === "true", "parked as an incident");
  await shoot(page, "incidents");
  await accessible(page, "the incidents");
  await page.getByRole("button", { name: `Retry ${id}` }).click();
  check((await text(page, "p.flash")).includes(id), "retried");
  await until(page, `${base}incidents`, async (p) => (await p.locator(`#incidents tr[data-application="${id}"]`).count()) === 0,
    "the incident delivered");
  check((await page.locator("#no-incidents").count()) === 1, "no incidents left");
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
