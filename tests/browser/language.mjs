// Every visible word in the chosen language: the whole route (the operator's
// form, bad input, the documents, the staff's four members, a refusal at
// condition 2 signed by the specialist (process 8) and a permission, the hand-over, a withdrawal, the process-4
// notice, the lists, the application's page, the regulation, the SLA report,
// the incidents) walked in Kazakh or Russian, failing if any visible text
// node holds an English word of the console's texts, its refusals or the
// definition's step titles, actors, outcomes, notices and terms. Codes, ids,
// IINs, dates and member ids stay Latin on purpose: a token with a digit, a
// dot, a hyphen, an underscore, a colon or a slash is not a word.
// Usage: node language.mjs CONSOLE_URL LANG WORDS_FILE
import { readFileSync } from "node:fs";
import { check, shoot, text, until, withBrowser } from "./lib.mjs";

const [base, lang, wordsFile] = process.argv.slice(2);
if (!base || !["kk", "ru"].includes(lang) || !wordsFile) {
  throw new Error("usage: node language.mjs CONSOLE_URL kk|ru WORDS_FILE");
}
const english = new Set(readFileSync(wordsFile, "utf8").split("\n").filter(Boolean));
check(english.size > 200, `the English words to look for (${english.size})`);

/// The English words of the page's visible text nodes (and of its selects' options).
async function englishOn(page) {
  const texts = await page.evaluate(() => {
    const out = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const parent = node.parentElement;
      if (!parent || !node.textContent.trim()) continue;
      const inOption = parent.closest("option");
      if (!inOption && !parent.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) continue;
      if (parent.closest("title, script, style")) continue;
      out.push(node.textContent);
    }
    for (const control of document.querySelectorAll("input[type=submit], input[placeholder]")) {
      out.push(control.value || control.placeholder || "");
    }
    return out;
  });
  const found = new Set();
  for (const text of texts) {
    for (const token of text.split(/\s+/)) {
      if (/[0-9._:\/@-]/.test(token)) continue; // a code, an id, an IIN, a date, a member
      for (const word of token.match(/[A-Za-z]{3,}/g) || []) {
        if (english.has(word.toLowerCase())) found.add(`${word} (in "${text.trim().slice(0, 60)}")`);
      }
    }
  }
  return [...found];
}

let pages = 0;
async function inLanguage(page, what) {
  check((await page.locator("html").getAttribute("lang")) === lang, `${what}: the page is in ${lang}`);
  const found = await englishOn(page);
  check(found.length === 0, `${what}: no English word in ${lang} ${found.join("; ")}`);
  pages += 1;
}

async function setLanguage(page) {
  await page.goto(`${base}lang?to=${lang}&back=/`);
}

async function staffAs(page, member) {
  await page.goto(`${base}staff`);
  const out = page.locator("form[action='/staff/logout'] button");
  if (await out.count()) await out.click();
  await page.locator("#member").selectOption(member);
  await page.locator("form[action='/staff/login'] button[type=submit]").click();
  check((await text(page, "#member-id")) === member, `staff logged in as ${member}`);
}

/// Opens the registration of `id` from `member`'s queue.
async function fromQueue(page, member, id) {
  await staffAs(page, member);
  const row = `tr:has(td:text-is("${id}"))`;
  await until(page, `${base}staff`, async (p) => (await p.locator(row).count()) > 0, `${id} in ${member}'s queue`);
  await inLanguage(page, `${member}'s queue`);
  await page.locator(`${row} a`).first().click();
  await page.locator("#step-title").waitFor();
  await inLanguage(page, `${member}'s registration`);
}

async function act(page, decision, ground) {
  if (decision) await page.locator(`#decision-${decision}`).check();
  if (ground) await page.locator("#ground").selectOption(ground);
  await page.locator("form[action$='/act'] button[type=submit]").click();
  await page.locator("p.flash").waitFor();
}

async function openForm(page, iin) {
  await page.goto(`${base}operator/new`);
  await page.locator("#applicant").fill(iin);
  await page.locator("form[action='/operator/new'] button[type=submit]").click();
  await page.locator("#application-id").waitFor();
  return text(page, "#application-id");
}

async function submit(page) {
  await page.setInputFiles("#doc-application-form", {
    name: "application.pdf", mimeType: "application/pdf", buffer: Buffer.from("scan of the application form"),
  });
  await page.setInputFiles("#doc-identity-document", {
    name: "identity.pdf", mimeType: "application/pdf", buffer: Buffer.from("scan of the identity card"),
  });
  await page.locator("form[action$='/submit'] button[type=submit]").click();
  await page.locator("p.flash").waitFor();
}

await withBrowser(async (browser) => {
  const operator = await (await browser.newContext()).newPage();
  const staff = await (await browser.newContext()).newPage();
  await setLanguage(operator);
  await setLanguage(staff);
  await inLanguage(operator, "the home page");

  // Process 1, and bad log-in input.
  await operator.goto(`${base}operator`);
  await inLanguage(operator, "the log-in");
  await operator.locator("form[action='/operator/login'] button[type=submit]").click();
  await operator.locator("#login-problem").waitFor();
  await inLanguage(operator, "an empty log-in refused");
  await operator.locator("#login").fill("operator-1");
  await operator.locator("#password").fill("wrong");
  await operator.locator("form[action='/operator/login'] button[type=submit]").click();
  await operator.locator("#login-problem").waitFor();
  await inLanguage(operator, "a wrong password refused");
  await operator.locator("#password").fill("operator-1-password");
  await operator.locator("form[action='/operator/login'] button[type=submit]").click();
  await operator.locator("#operator-id").waitFor();
  await inLanguage(operator, "the operator's applications");

  // Process 2: bad input next to its field.
  await operator.goto(`${base}operator/new`);
  await inLanguage(operator, "the new application's form");
  await operator.locator("form[action='/operator/new'] button[type=submit]").click();
  await operator.locator("#applicant-problem").waitFor();
  await inLanguage(operator, "an empty IIN refused");
  await operator.locator("#applicant").fill("850715300123");
  await operator.locator("form[action='/operator/new'] button[type=submit]").click();
  await operator.locator("#applicant-problem").waitFor();
  check((await operator.locator("#applicant-problem").getAttribute("data-code")) === "iin.check_digit", "the code stays");
  await inLanguage(operator, "a wrong IIN refused");

  // The permission: processes 3-6, the staff's steps, the hand-over.
  const permitted = await openForm(operator, "850715300122");
  await inLanguage(operator, "the look-up and the documents' form");
  await operator.locator("form[action$='/submit'] button[type=submit]").click();
  await operator.locator("#submit-problem").waitFor();
  await inLanguage(operator, "an incomplete package refused, with the counter's notice");
  await submit(operator);
  await inLanguage(operator, "submitted");

  await fromQueue(staff, "office-1", permitted);
  await act(staff);
  await fromQueue(staff, "specialist-1", permitted);
  await act(staff, "yes");
  await fromQueue(staff, "executor-1", permitted);
  await act(staff, "yes");
  await fromQueue(staff, "executor-1", permitted);
  await act(staff);
  await fromQueue(staff, "head-1", permitted);
  await act(staff);
  await fromQueue(staff, "office-1", permitted);
  await act(staff);
  await inLanguage(staff, "the office's queue, with the reception form");
  await shoot(staff, `staff-queue-${lang}`);

  await until(operator, `${base}operator/applications/${permitted}`,
    async (p) => (await p.locator("form[action$='/ticket']").count()) > 0, "the result at the workstation");
  await inLanguage(operator, "the result arrived");
  await operator.locator("form[action$='/ticket'] button").click();
  await operator.locator("p.flash").waitFor();
  await inLanguage(operator, "a ticket taken");
  await operator.locator("form[action$='/call-next'] button").click();
  await operator.locator("p.flash").waitFor();
  await inLanguage(operator, "the ticket called");
  await operator.locator("form[action$='/issue'] button").click();
  await operator.locator("p.flash").waitFor();
  await inLanguage(operator, "the permission handed over");
  await shoot(operator, `operator-application-${lang}`);

  // A refusal at condition 2, with its ground.
  const refused = await openForm(operator, "900101400122");
  await submit(operator);
  await fromQueue(staff, "office-1", refused);
  await act(staff);
  await fromQueue(staff, "specialist-1", refused);
  await act(staff, "no", "incomplete-package");
  // Process 8: the specialist who decided signs the refusal the ARM drafted.
  await fromQueue(staff, "specialist-1", refused);
  await act(staff);
  await until(operator, `${base}operator/applications/${refused}`,
    async (p) => (await p.locator("form[action$='/ticket']").count()) > 0, "the refusal at the workstation");
  await operator.locator("form[action$='/ticket'] button").click();
  await operator.locator("p.flash").waitFor();
  await operator.locator("form[action$='/call-next'] button").click();
  await operator.locator("p.flash").waitFor();
  await operator.locator("form[action$='/issue'] button").click();
  await operator.locator("p.flash").waitFor();
  await inLanguage(operator, "the refusal handed over, with its notice");

  // The process-4 notice, and a withdrawal.
  const absent = await openForm(operator, "880101300111");
  await inLanguage(operator, "the process-4 notice");
  const withdrawn = await openForm(operator, "850715300122");
  const reason = operator.locator("#reason");
  await reason.fill(lang === "kk" ? "өтініш беруші кетіп қалды" : "заявитель ушёл");
  await operator.locator("#withdraw-confirm").check();
  await operator.locator("form[action$='/withdraw'] button[type=submit]").click();
  await operator.locator("p.flash").waitFor();
  await inLanguage(operator, "withdrawn");

  // The testers' and auditors' pages.
  for (const id of [permitted, refused, absent, withdrawn]) {
    await operator.goto(`${base}applications/${id}`);
    await inLanguage(operator, `the application ${id}`);
  }
  await shoot(operator, `application-${lang}`);
  for (const [path, what] of [["applications", "the applications"], ["applications?state=ended", "the ended"],
    ["regulation", "the regulation"], ["sla", "the SLA report"], ["incidents", "the incidents"],
    ["incidents?all=yes", "every pending delivery"], ["operator", "the operator's list"]]) {
    await operator.goto(`${base}${path}`);
    await inLanguage(operator, what);
  }
  await operator.goto(`${base}regulation`);
  await shoot(operator, `regulation-${lang}`);
  await staff.goto(`${base}staff`);
  await staff.locator("form[action='/staff/logout'] button").click();
  await inLanguage(staff, "the staff's log-in");
  check(pages >= 40, `${pages} pages walked in ${lang}`);
});
console.log(`language ${lang}: passed`);
