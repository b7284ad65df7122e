// What the console's browser tests share: headless Debian Chromium driven by
// playwright-core (no browser download), checks that fail loudly, screenshots.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

export const CHROMIUM = process.env.EGOV_CHROMIUM || "/usr/bin/chromium";
const SCREENSHOTS = process.env.EGOV_SCREENSHOTS || "target/console-screenshots";

/// A fresh browser (playwright gives each launch its own new profile directory).
export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

export function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
  console.log(`ok: ${what}`);
}

export async function shoot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/// A screenshot of one element (a drawing) only.
export async function shootElement(locator, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  // A live page may swap the element for a fresher one while it is shot: shot again, once it is settled.
  for (let attempt = 1; ; attempt += 1) {
    try {
      await locator.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
      return;
    } catch (error) {
      if (attempt >= 3 || !String(error).includes("not attached")) throw error;
      await locator.page().waitForTimeout(300);
    }
  }
}

/// The text of the first element `selector` matches, trimmed.
export async function text(page, selector) {
  return ((await page.locator(selector).first().textContent()) || "").trim();
}

/// Reloads `path` until `probe(page)` is true (within 20 s).
export async function until(page, url, probe, what) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    await page.goto(url);
    if (await probe(page)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await page.waitForTimeout(250);
  }
}

/// The reason code shown in the alert `selector` (its data-code).
export async function reason(page, selector) {
  const alert = page.locator(selector);
  await alert.waitFor({ timeout: 10_000 });
  return alert.getAttribute("data-code");
}

export async function operatorLogin(page, base, login = "operator-1") {
  await page.goto(`${base}operator`);
  await page.getByLabel("Login", { exact: true }).fill(login);
  await page.getByLabel("Password", { exact: true }).fill(`${login}-password`);
  await page.getByRole("button", { name: "Log in" }).click();
  check((await text(page, "#operator-id")) === login, `logged in as ${login}`);
}

/// Opens a new application's form (process 2) for `iin`: the application's id.
export async function openForm(page, base, iin) {
  await page.goto(`${base}operator/new`);
  await page.getByLabel("Applicant's IIN", { exact: true }).fill(iin);
  await page.getByRole("button", { name: "Open the form and look the data up" }).click();
  await page.locator("#application-id").waitFor();
  return text(page, "#application-id");
}

/// Attaches the required documents with the file picker and signs (processes 5-6).
export async function attachAndSubmit(page) {
  await page.setInputFiles("#doc-application-form", {
    name: "application.pdf", mimeType: "application/pdf", buffer: Buffer.from("scan of the application form"),
  });
  await page.setInputFiles("#doc-identity-document", {
    name: "identity.pdf", mimeType: "application/pdf", buffer: Buffer.from("scan of the identity card"),
  });
  await page.getByRole("button", { name: "Sign and submit (processes 5-6)" }).click();
  await page.locator("p.flash").waitFor();
}

/// Logs the staff page in as `member` (logging out whoever was in).
export async function staffLogin(page, base, member) {
  await page.goto(`${base}staff`);
  const out = page.getByRole("button", { name: "Log out" });
  if (await out.count()) await out.click();
  await page.getByLabel("Member", { exact: true }).selectOption(member);
  await page.getByRole("button", { name: "Log in" }).click();
  check((await text(page, "#member-id")) === member, `staff logged in as ${member}`);
}

/// Opens, from `member`'s queue, the registration of `applicationId` (waiting until it is there).
export async function openFromQueue(page, base, member, applicationId) {
  await staffLogin(page, base, member);
  const row = `tr:has(td:text-is("${applicationId}"))`;
  await until(page, `${base}staff`, async (p) => (await p.locator(row).count()) > 0, `${applicationId} in ${member}'s queue`);
  await page.locator(`${row} a`).first().click();
  await page.locator("#step-title").waitFor();
}

/// Every visible form control of the page has an accessible name (a label,
/// aria-label or aria-labelledby), every table its header cells, every image a name.
export async function accessible(page, what) {
  const unnamed = await page.evaluate(() => {
    const missing = [];
    for (const control of document.querySelectorAll("input, select, textarea, button")) {
      if (control.type === "hidden") continue;
      const named = (control.labels && control.labels.length > 0) || control.getAttribute("aria-label")
        || control.getAttribute("aria-labelledby") || (control.tagName === "BUTTON" && control.textContent.trim());
      if (!named) missing.push(control.outerHTML.slice(0, 80));
    }
    for (const table of document.querySelectorAll("table")) {
      if (!table.querySelector("th")) missing.push(`a table without headers: ${table.outerHTML.slice(0, 80)}`);
    }
    for (const svg of document.querySelectorAll("svg[role=img]")) {
      const id = svg.getAttribute("aria-labelledby");
      if (!id || !document.getElementById(id)) missing.push(`an unnamed drawing: ${svg.outerHTML.slice(0, 80)}`);
    }
    return missing;
  });
  check(unnamed.length === 0, `${what}: every control, table and drawing named ${unnamed.join("; ")}`);
}

/// Runs `body` with a fresh browser, closed whatever happens.
export async function withBrowser(body) {
  const browser = await launch();
  try {
    await body(browser);
  } finally {
    await browser.close();
  }
}

/// Posts `fields` to `path` as a form of the page would (its token and the console's origin), though the page
/// offers no such form: what the console answers a forged or stale form. The answer's HTML.
export async function postAnyway(page, path, fields) {
  return page.evaluate(async ([path, fields]) => {
    const token = document.querySelector("input[name=csrf]").value;
    const body = new URLSearchParams({ csrf: token, ...fields });
    const answer = await fetch(path, { method: "POST", body });
    return answer.text();
  }, [path, fields]);
}

/// The staff members and their steps' forms: on the registration page at `url`, only `member` has a step form.
export async function onlyFor(page, base, url, member, what) {
  for (const other of ["office-1", "specialist-1", "executor-1", "head-1"]) {
    await staffLogin(page, base, other);
    await page.goto(url);
    const forms = await page.locator("form[action$='/act']").count();
    check(forms === (other === member ? 1 : 0), `${what}: ${other} ${other === member ? "has" : "has no"} step form`);
  }
}
