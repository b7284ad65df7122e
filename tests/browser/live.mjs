// Live pages: an application submitted in one browser context shows its
// registration, without a reload, on its page open in another, in the staff's
// queue and in the Applications list; and an idle live page asks nothing of
// the console (the console tells it of a change: server-sent events).
// Usage: node live.mjs CONSOLE_URL
import { attachAndSubmit, check, openForm, operatorLogin, shoot, staffLogin, text, withBrowser } from "./lib.mjs";

const base = process.argv[2];
if (!base) throw new Error("usage: node live.mjs CONSOLE_URL");

/// Marks the page, so that a reload would show (the mark is gone).
async function mark(page) {
  await page.evaluate(() => { window.egovNotReloaded = true; });
}

async function notReloaded(page, what) {
  check(await page.evaluate(() => window.egovNotReloaded === true), `${what}, without a reload`);
}

await withBrowser(async (browser) => {
  const operator = await (await browser.newContext()).newPage();
  const tester = await (await browser.newContext()).newPage();
  const office = await (await browser.newContext()).newPage();
  const auditor = await (await browser.newContext()).newPage();
  await operatorLogin(operator, base);
  const id = await openForm(operator, base, "850715300122");

  await tester.goto(`${base}applications/${id}`);
  check((await text(tester, "#registration")) === "", "not registered yet");
  await staffLogin(office, base, "office-1");
  await auditor.goto(`${base}applications?q=${id}`);
  check((await auditor.locator(`#applications tr[data-application="${id}"]`).count()) === 1, "listed");
  for (const page of [tester, office, auditor]) await mark(page);
  // Idle, a live page sends no request: no loop polls in it.
  const asked = [];
  tester.on("request", (request) => asked.push(request.url()));
  await tester.waitForTimeout(2500);
  check(asked.length === 0, `an idle page asks nothing (${asked.join(", ")})`);

  await attachAndSubmit(operator);
  await tester.waitForFunction(() => document.querySelector("#registration").textContent.trim().startsWith("RSHEP-"),
    null, { timeout: 20_000 });
  await notReloaded(tester, "the registration appears on the application's page in another context");
  const registration = await text(tester, "#registration");
  check(asked.every((url) => url.includes(`/applications/${id}`) || url.includes("/live")),
    "it fetched only its own page");
  await office.locator(`tr[data-registration="${registration}"]`).waitFor({ timeout: 20_000 });
  await notReloaded(office, "the registration appears in the office's queue");
  await auditor.waitForFunction((id) => {
    const row = document.querySelector(`#applications tr[data-application="${id}"]`);
    return row && row.textContent.includes("action-1");
  }, id, { timeout: 20_000 });
  await notReloaded(auditor, "the list shows it waiting on the office");
  check((await auditor.locator("#q").inputValue()) === id, "the list keeps its search");

  // The office acts: the tester's page follows, again without a reload.
  await office.locator(`tr[data-registration="${registration}"] a`).click();
  await office.getByRole("button", { name: "Do the step and sign" }).click();
  await tester.waitForFunction(() => document.querySelector("#state").textContent.includes("condition-2"), null,
    { timeout: 20_000 });
  await notReloaded(tester, "action 1 done shows on the application's page");
  await shoot(tester, "application-live");
});
console.log("live: passed");
