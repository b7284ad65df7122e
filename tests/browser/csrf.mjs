// (f) Cross-site request forgery: a page of another site, on another port of
// 127.0.0.1 (the same site to the browser: it sends the console's cookies)
// and on another host name, posts the operator's form in the browser where
// the operator is logged in. Refused (console.csrf), and no application opened.
// Usage: node csrf.mjs CONSOLE_URL
import { createServer } from "node:http";
import { check, operatorLogin, reason, withBrowser } from "./lib.mjs";

const base = process.argv[2];
if (!base) throw new Error("usage: node csrf.mjs CONSOLE_URL");

// The other site: a page that posts the console's form as soon as it loads.
const other = createServer((request, response) => {
  response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  response.end(`<!DOCTYPE html><html><body>
    <form id="f" method="post" action="${base}operator/new"><input name="applicant" value="850715300122"></form>
    <script>document.getElementById("f").submit();</script></body></html>`);
});
await new Promise((listening) => other.listen(0, "127.0.0.1", listening));
const port = other.address().port;

try {
  await withBrowser(async (browser) => {
    const page = await (await browser.newContext()).newPage();
    await operatorLogin(page, base);
    const listed = await page.locator("tr[data-application]").count();
    for (const site of [`http://127.0.0.1:${port}/`, `http://localhost:${port}/`]) {
      await page.goto(site);
      check((await reason(page, "#csrf-problem")) === "console.csrf", `a form posted from ${site}: console.csrf`);
      check(page.url() === `${base}operator/new`, "the console answered it");
    }
    await page.goto(`${base}operator`);
    check((await page.locator("#operator-id").count()) === 1, "still logged in");
    check((await page.locator("tr[data-application]").count()) === listed, "no application opened");
    // The same form on the console's own page opens one.
    await page.goto(`${base}operator/new`);
    await page.getByLabel("Applicant's IIN", { exact: true }).fill("850715300122");
    await page.getByRole("button", { name: "Open the form and look the data up" }).click();
    await page.locator("#application-id").waitFor();
    await page.goto(`${base}operator`);
    check((await page.locator("tr[data-application]").count()) === listed + 1, "from the console's page: opened");
  });
} finally {
  other.close();
}
console.log("csrf: passed");
