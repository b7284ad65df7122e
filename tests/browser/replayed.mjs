// The replayed fixture library, on simulated time: an application whose
// executor overran shows its missed step and term on the timeline, marked.
// Usage: node replayed.mjs CONSOLE_URL
import { check, shoot, shootElement, withBrowser } from "./lib.mjs";

const base = process.argv[2];
if (!base) throw new Error("usage: node replayed.mjs CONSOLE_URL");

await withBrowser(async (browser) => {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await page.goto(`${base}applications?standing=missed`);
  const missed = await page.locator("#applications tbody tr").count();
  check(missed >= 3, `the missed applications listed (${missed})`);
  await shoot(page, "applications-missed");
  await page.goto(`${base}applications?q=executor-overruns`);
  await page.locator("#applications tbody tr a").first().click();
  await page.locator("svg.timeline").waitFor();
  for (const [step, standing] of [["action-2", "missed"], ["service-term", "missed"], ["action-1", "met"]]) {
    const row = page.locator(`svg.timeline g[data-step="${step}"]`);
    check((await row.getAttribute("data-standing")) === standing, `${step} ${standing}`);
  }
  const label = page.locator('svg.timeline g[data-step="action-2"] text.bad');
  check((await label.textContent()) === "missed", "the missed step is labelled");
  check((await page.locator('svg.timeline g[data-step="action-2"] rect.missed').count()) === 1, "and its bar marked");
  check((await page.locator("svg.timeline rect.dayoff").count()) >= 2, "the weekend's days off on the axis");
  await shootElement(page.locator("svg.timeline"), "timeline-replayed");
  await page.goto(`${base}sla`);
  await shoot(page, "sla-replayed");
});
console.log("replayed: passed");
