// (a) One application through every process in the browser: the operator's
// form, the staff's steps as four members, the result handed over; the page
// texts, the bad input refused next to its field, and the timeline checked.
// Usage: node route.mjs CONSOLE_URL
import {
  accessible, attachAndSubmit, check, onlyFor, openForm, openFromQueue, operatorLogin, postAnyway, reason, shoot, shootElement,
  staffLogin, text, until, withBrowser,
} from "./lib.mjs";

const base = process.argv[2];
if (!base) throw new Error("usage: node route.mjs CONSOLE_URL");

await withBrowser(async (browser) => {
  const operator = await (await browser.newContext()).newPage();
  const staff = await (await browser.newContext()).newPage();

  // The language switch: every page in kk, ru and en.
  await operator.goto(base);
  await operator.getByRole("link", { name: "Русский" }).click();
  check((await text(operator, "h1")) === "Консоль egov", "the home page in Russian");
  check(await operator.getByRole("navigation", { name: "Главное меню" }).getByRole("link", { name: "Заявки" }).isVisible(), "the menu in Russian");
  await operator.getByRole("link", { name: "Қазақша" }).click();
  check((await operator.locator("html").getAttribute("lang")) === "kk", "the page says it is in Kazakh");
  check(await operator.getByRole("navigation", { name: "Негізгі мәзір" }).getByRole("link", { name: "Өтінімдер" }).isVisible(), "the menu in Kazakh");
  await shoot(operator, "home-kk");
  await operator.getByRole("link", { name: "English" }).click();
  check((await text(operator, "h1")) === "egov console", "back in English");

  // Process 1.
  await operatorLogin(operator, base);
  // Bad input: an empty form, then a wrong IIN, each shown next to the field; nothing is stored.
  await operator.goto(`${base}operator/new`);
  await operator.getByRole("button", { name: "Open the form and look the data up" }).click();
  check((await reason(operator, "#applicant-problem")) === "console.required", "an empty form: console.required");
  await operator.getByLabel("Applicant's IIN", { exact: true }).fill("850715300123");
  await operator.getByRole("button", { name: "Open the form and look the data up" }).click();
  check((await reason(operator, "#applicant-problem")) === "iin.check_digit", "a wrong IIN: iin.check_digit");
  check((await operator.getByLabel("Applicant's IIN", { exact: true }).getAttribute("aria-invalid")) === "true",
    "the field is marked invalid");
  await shoot(operator, "operator-bad-iin");
  await accessible(operator, "the form");
  await operator.goto(`${base}operator`);
  const listed = await operator.locator("tr[data-application]").count();

  // Process 2, then 3 and condition 1 at the workstation: the look-up result.
  const id = await openForm(operator, base, "850715300122");
  check((await text(operator, "#lookup")).includes("Серикбаев"), "the look-up found the applicant");
  check((await text(operator, "#state")).startsWith("process-5"), "the form waits for the documents (process 5)");
  await operator.goto(`${base}operator`);
  check((await operator.locator("tr[data-application]").count()) === listed + 1, "one application more, not two");

  // Process 5: a file too large is refused next to its picker, and nothing is sent.
  await operator.goto(`${base}operator/applications/${id}`);
  await operator.setInputFiles("#doc-application-form", {
    name: "huge.pdf", mimeType: "application/pdf", buffer: Buffer.alloc(3 * 1024 * 1024, 1),
  });
  await operator.getByRole("button", { name: "Sign and submit (processes 5-6)" }).click();
  check((await reason(operator, "#doc-application-form-problem")) === "console.file_too_large",
    "a file too large: console.file_too_large");
  check((await text(operator, "#state")).startsWith("process-5"), "still waiting for the documents");
  await shoot(operator, "operator-documents");
  await accessible(operator, "the documents");
  await attachAndSubmit(operator);
  check(!(await text(operator, "#state")).startsWith("process-5"), "submitted: past process 5");

  // The tester's view while it waits on the office: the current step highlighted, on the timeline as open.
  await until(operator, `${base}applications/${id}`,
    async (p) => (await p.locator('svg.diagram g.step.current[data-step="action-1"]').count()) === 1, "registered");
  check((await operator.locator('svg.diagram g[aria-current="step"]').getAttribute("data-step")) === "action-1",
    "the diagram highlights action 1, and only it");
  check((await operator.locator('svg.diagram g.step.done[data-step="process-7"]').count()) === 1, "process 7 done");
  check((await operator.locator('svg.timeline g[data-step="action-1"] rect.bar.open').count()) === 1,
    "action 1 open on the timeline");
  // The timeline: a "now" line while it is open, the year on the axis, each row named by its title, zoomed.
  check((await operator.locator("svg.timeline g.now line.now-line").count()) === 1, "a now line");
  const year = String(new Date().getFullYear());
  check((await operator.locator("svg.timeline text.tick").allTextContents()).some((tick) => tick.startsWith(year)),
    "the year on the axis");
  check((await operator.locator('svg.timeline g[data-step="action-1"] text.row-title').textContent()).startsWith("accept and register"),
    "a row named by its step's title");
  check((await operator.locator("svg.timeline").getAttribute("data-zoom")) === "minutes", "minutes for a short span");
  for (const zoom of ["hours", "days", "weeks", "minutes"]) {
    await operator.locator(`nav.zoom a[data-zoom="${zoom}"]`).click();
    check((await operator.locator("svg.timeline").getAttribute("data-zoom")) === zoom, `zoomed to ${zoom}`);
  }
  await shootElement(operator.locator("svg.timeline"), "timeline-open");

  // The staff's steps, each signed by its member.
  await openFromQueue(staff, base, "office-1", id);
  check((await text(staff, "#step-title")).startsWith("action-1"), "the office receives (action 1)");
  check((await staff.locator('table tbody tr[data-kind="application-form"]').count()) === 1,
    "the registration lists the documents");
  await shoot(staff, "staff-registration");
  await accessible(staff, "the registration");
  await staff.getByRole("button", { name: "Do the step and sign" }).click();
  check((await text(staff, "p.flash")).includes("condition-2"), "action 1 done: condition 2 next");

  // The applicant comes before the result: the operator is offered no ticket and no hand-over, only when it is due;
  // a ticket asked for anyway is refused with the time to come back, and none is taken.
  await operator.goto(`${base}operator/applications/${id}`);
  check((await operator.getByRole("button", { name: "Take a queue ticket" }).count()) === 0, "no ticket before the result");
  check((await operator.getByRole("button", { name: "Hand the result over" }).count()) === 0, "no hand-over before the result");
  check((await text(operator, "#result-pending")).includes("+05:00"), "told when the result is due");
  const early = await postAnyway(operator, `/operator/applications/${id}/ticket`, {});
  check(early.includes('data-code="workstation.result_not_ready"') && early.includes("Come back at"),
    "a ticket asked for anyway: result_not_ready, with the time to come back");
  await operator.reload();
  check((await operator.locator("#ticket").count()) === 0, "no ticket taken");

  // A step out of turn: only the specialist has condition 2's form; the head's forged form is refused.
  await openFromQueue(staff, base, "specialist-1", id);
  const registration = staff.url();
  // The queue filtered by what a specialist knows: the registration, the IIN, the name, the step.
  for (const [query, rows] of [[`q=${registration.split("/").pop()}`, 1], ["q=850715300122", 1],
    [`q=${encodeURIComponent("серикбаев")}`, 1], ["q=nobody-at-all", 0], ["step=condition-2", 1]]) {
    await staff.goto(`${base}staff?${query}`);
    check((await staff.locator(`tr:has(td:text-is("${id}"))`).count()) === rows, `the queue by ${query}: ${rows}`);
  }
  await onlyFor(staff, base, registration, "specialist-1", "condition 2");
  await staffLogin(staff, base, "head-1");
  await staff.goto(registration);
  check((await text(staff, "#step-readonly")).includes("provider's specialist"), "the head sees whom it waits on");
  const forged = await postAnyway(staff, `${registration.slice(base.length - 1)}/act`, { step: "condition-2", decision: "yes" });
  check(forged.includes('data-code="process.wrong_actor"'), "the head's condition 2, forged: process.wrong_actor");
  await staff.goto(registration);
  check((await text(staff, "#step-title")).startsWith("condition-2"), "still at condition 2");

  await openFromQueue(staff, base, "specialist-1", id);
  // Without a decision the browser does not send the form; sent anyway, the console refuses it.
  await staff.getByRole("button", { name: "Do the step and sign" }).click();
  check(await staff.locator("#decision-yes").evaluate((radio) => !radio.validity.valid), "a decision is required");
  await staff.locator("form[action$='/act']").evaluate((form) => { form.noValidate = true; });
  await staff.getByRole("button", { name: "Do the step and sign" }).click();
  check((await reason(staff, "#decision-problem")) === "console.required", "no decision: console.required");
  await staff.getByLabel("Yes", { exact: true }).check();
  await staff.getByRole("button", { name: "Do the step and sign" }).click();
  check((await text(staff, "p.flash")).includes("action-2"), "the documents comply: action 2 next");

  await openFromQueue(staff, base, "executor-1", id);
  check((await text(staff, "#step-title")).startsWith("action-2"), "the executor decides (action 2)");
  await onlyFor(staff, base, staff.url(), "executor-1", "action 2");
  await openFromQueue(staff, base, "executor-1", id);
  check((await staff.getByLabel("Permit", { exact: true }).count()) === 1
    && (await staff.getByLabel("Refuse", { exact: true }).count()) === 1, "the executor's decision: Permit or Refuse");
  await staff.getByLabel("Permit", { exact: true }).check();
  await staff.getByRole("button", { name: "Do the step and sign" }).click();
  await openFromQueue(staff, base, "executor-1", id);
  check((await text(staff, "#step-title")).startsWith("action-3"), "the draft goes to the head (action 3)");
  check((await staff.locator("p.result").getAttribute("data-outcome")) === "permitted", "the draft is the permission");
  await onlyFor(staff, base, staff.url(), "executor-1", "the hand-over of action 3");
  await openFromQueue(staff, base, "executor-1", id);
  await staff.getByRole("button", { name: "Hand the draft over to the head" }).click();

  await openFromQueue(staff, base, "head-1", id);
  await onlyFor(staff, base, staff.url(), "head-1", "the head's signature");
  await openFromQueue(staff, base, "head-1", id);
  check(/^SHA-256: [0-9a-f]{64}$/.test(await text(staff, "#draft-digest")), "the head sees the digest of what they sign");
  await shoot(staff, "staff-head-signs");
  await accessible(staff, "the signature");
  await staff.getByRole("button", { name: "Sign the result (EDS)" }).click();
  check((await text(staff, "p.flash")).includes("action-4"), "signed: action 4 next");

  await openFromQueue(staff, base, "office-1", id);
  check((await text(staff, "#step-title")).startsWith("action-4"), "the office sends the result (action 4)");
  await onlyFor(staff, base, staff.url(), "office-1", "action 4");
  await openFromQueue(staff, base, "office-1", id);
  await staff.getByRole("button", { name: "Do the step and sign" }).click();
  await staff.goto(`${base}staff`);
  await shoot(staff, "staff-queue");
  await accessible(staff, "the staff's queue");

  // Process 9: the applicant takes a ticket, the operator hands the result over.
  await until(operator, `${base}operator/applications/${id}`,
    async (p) => (await p.getByRole("button", { name: "Take a queue ticket" }).count()) > 0, "the result at the workstation");
  check((await operator.locator("#result-pending").count()) === 0, "the result has arrived");
  await operator.getByRole("button", { name: "Take a queue ticket" }).click();
  check((await text(operator, "p.flash")).startsWith("Ticket R-"), "a ticket of the electronic queue");
  // Paragraph 9.4: the operator, free, calls the next ticket to their window: this applicant's.
  await operator.getByRole("button", { name: "Call the next ticket" }).click();
  check((await text(operator, "p.flash")).endsWith(`called: ${id}`), "the ticket called to the operator");
  check((await text(operator, "#ticket-called")).includes("operator-1"), "the page says whom it was called to");
  await operator.getByRole("button", { name: "Hand the result over" }).click();
  check((await text(operator, "#state")) === "Outcome: permitted", "handed over: permitted");
  await operator.goto(`${base}operator`);
  check((await operator.locator(`tr[data-application="${id}"] td.state`).textContent()).includes("permitted"),
    "the operator's list shows the outcome");
  await shoot(operator, "operator-applications");

  // The tester's view: the timeline, the diagram, the signed messages.
  await operator.goto(`${base}applications/${id}`);
  const steps = ["process-1", "process-2", "process-5", "process-7", "action-1", "condition-2", "action-2", "action-3",
    "action-4", "process-9", "service-term", "sc-handling"];
  for (const step of steps) {
    check((await operator.locator(`svg.timeline g[data-step="${step}"]`).count()) >= 1, `the timeline has ${step}`);
  }
  check((await operator.locator('svg.timeline g[data-step="service-term"]').getAttribute("data-standing")) === "met",
    "the provider's term was met");
  check((await operator.locator("svg.diagram g.step.done").count()) >= 12, "the diagram marks the steps done");
  check((await operator.locator('svg.diagram g.step[aria-current="step"]').count()) === 0, "no current step: it ended");
  const messages = await operator.locator("#messages tr.message").count();
  check(messages >= 8, `the logs hold the application's messages (${messages})`);
  const signatures = await operator.locator("#messages li.signature").count();
  const verified = await operator.locator('#messages li.signature[data-verified="true"]').count();
  check(signatures > messages && verified === signatures, `every signature verified (${verified}/${signatures})`);
  for (const participant of ["workstation", "gateway", "regional"]) {
    const rows = await operator.locator(`section.log[data-participant="${participant}"] tr.message`).count();
    check(rows >= 3, `the ${participant}'s log of the application (${rows} entries)`);
  }
  const regional = (await operator.locator('section.log[data-participant="regional"]').textContent()) || "";
  for (const member of ["office-1:", "specialist-1:", "executor-1:", "head-1:"]) {
    check(regional.includes(member), `the ARM's log has the steps signed by ${member.slice(0, -1)}`);
  }
  const workstation = (await operator.locator('section.log[data-participant="workstation"]').textContent()) || "";
  check(workstation.includes("sc.form.open.v1") && workstation.includes("sc.result.issue.v1"),
    "the workstation's log has the operator's form and the hand-over");
  check((await operator.locator("#messages").textContent()).includes("operator-1:"), "the operator's key signed");
  check((await operator.locator("#messages").textContent()).includes("head-1:"), "the head's key signed the result");
  check((await operator.locator("#hops tbody tr").count()) > messages, "every participant's monitoring records");
  // Each body a tree of named fields, the documents' scans linked and opening, nothing wider than the window.
  const submission = operator.locator('section.log[data-participant="workstation"] tr.message[data-service="sc.form.submit.v1"]').first();
  check((await submission.locator('ul.tree li[data-field="application_id"]').count()) >= 1, "a body's named fields");
  check(!(await operator.locator("#messages").textContent()).includes("AttachedDocument {"), "no Rust debug output");
  const scans = await submission.locator("a.scan").evaluateAll((links) => links.map((link) => link.getAttribute("href")));
  check(scans.length === 2, `both documents of the submission linked (${scans.length})`);
  const scanText = await operator.evaluate(async (href) => (await fetch(href)).text(), scans[0]);
  check(scanText === "scan of the application form", `a scan opens (${scanText.slice(0, 40)})`);
  await operator.setViewportSize({ width: 1024, height: 800 });
  await operator.evaluate(() => { for (const details of document.querySelectorAll("details")) details.open = true; });
  const widths = await operator.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check(widths[0] <= widths[1], `every body open, nothing wider than a 1024 px window (${widths})`);
  await shoot(operator, "messages-open");
  await operator.setViewportSize({ width: 1280, height: 800 });
  // Each path step links to the message that made it, and the message back.
  for (const step of ["process-2", "process-5", "action-1", "condition-2", "action-2", "action-4", "process-9"]) {
    const link = operator.locator(`table.path tr[data-step="${step}"] a.message-link`);
    check((await link.count()) === 1, `${step} links to its message`);
    const target = (await link.getAttribute("href")).slice(1);
    check((await operator.locator(`tr.message[id="${target}"] a.step-link[href="#step-${step}"]`).count()) === 1,
      `${step}'s message links back`);
  }
  // The monitoring records: the four timestamps and the latencies.
  const hop = operator.locator('#hops tr.hop[data-kind="server"]').first();
  check((await hop.locator("td.stamp").count()) === 4, "four timestamps a hop");
  check((await hop.locator("td.latency").textContent()).includes(" ms"), "with its latency");
  await shoot(operator, "application");
  await accessible(operator, "the application");
  await shootElement(operator.locator("svg.timeline"), "timeline");
  await shootElement(operator.locator("svg.diagram"), "diagram");
  await shootElement(operator.locator('section.log[data-participant="regional"]'), "messages-regional");

  // What is not there: a page of its own in the chosen language, 404.
  for (const path of ["nowhere", `applications/no-such-application`, "operator/applications/no-such-application"]) {
    const answer = await operator.goto(`${base}${path}`);
    check(answer.status() === 404 && (await operator.locator('#not-found[data-code="console.not_found"]').count()) === 1,
      `/${path}: 404, said`);
  }
  await operator.goto(`${base}lang?to=ru&back=/nowhere`);
  check((await text(operator, "h1")) === "Не найдено", "the 404 page in Russian");
  await operator.goto(`${base}lang?to=en&back=/`);

  // The list, searched.
  await operator.goto(`${base}applications?q=${id}`);
  check((await operator.locator("#applications tbody tr").count()) === 1, "the search finds the application");
  // Searched by the applicant's name (any case) and by IIN; the list names the applicant.
  for (const q of ["серикбаев", "Серикбаев Асылбек", "850715300122"]) {
    await operator.goto(`${base}applications?q=${encodeURIComponent(q)}`);
    check((await operator.locator(`#applications tr[data-application="${id}"]`).count()) === 1, `found by ${q}`);
  }
  check((await text(operator, `#applications tr[data-application="${id}"] td.applicant`)).startsWith("Серикбаев"),
    "the list names the applicant");
  // "Started" is the application's own start (its form opened, process 2), not the operator's log-in (process 1).
  const listedStart = await text(operator, `#applications tr[data-application="${id}"] td.started`);
  await operator.goto(`${base}applications/${id}`);
  const opened = await text(operator, 'table.path tr[data-step="process-2"] td:nth-child(4)');
  check(listedStart === opened && (await text(operator, "#started")) === opened, `started when opened (${opened})`);
  await operator.goto(`${base}applications?state=ended&outcome=permitted`);
  check((await operator.locator(`#applications tr[data-application="${id}"]`).count()) === 1, "found by outcome");
  await operator.goto(`${base}applications?standing=missed`);
  check((await operator.locator(`#applications tr[data-application="${id}"]`).count()) === 0, "not among the missed");
  await operator.goto(`${base}applications`);
  await shoot(operator, "applications");
  await accessible(operator, "the applications");
  await operator.goto(`${base}regulation`);
  check((await operator.locator("svg.diagram g.step").count()) >= 14, "the regulation drawn");
  // Annex 1 in each language: no label cut, none on another, every step's text inside its shape, 12 px.
  for (const lang of ["kk", "ru", "en"]) {
    await operator.goto(`${base}lang?to=${lang}&back=/regulation`);
    const drawn = await operator.evaluate(() => {
      const svg = document.querySelector("svg.diagram");
      const boxes = [...svg.querySelectorAll("text")].map((text) => ({ text: text.textContent, box: text.getBBox() }));
      const overlaps = [];
      for (let i = 0; i < boxes.length; i += 1) {
        for (let j = i + 1; j < boxes.length; j += 1) {
          const [a, b] = [boxes[i].box, boxes[j].box];
          if (a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height) {
            overlaps.push(`${boxes[i].text} / ${boxes[j].text}`);
          }
        }
      }
      const outside = [];
      for (const step of svg.querySelectorAll("g.step")) {
        const shape = step.querySelector(".shape").getBBox();
        for (const text of step.querySelectorAll("text")) {
          const box = text.getBBox();
          if (box.x < shape.x || box.x + box.width > shape.x + shape.width || box.y < shape.y || box.y + box.height > shape.y + shape.height) {
            outside.push(text.textContent);
          }
        }
      }
      const size = parseFloat(getComputedStyle(svg.querySelector("g.step text")).fontSize) * svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
      return { overlaps, outside, cut: svg.textContent.includes("…"), size };
    });
    check(drawn.overlaps.length === 0, `${lang}: no label on another ${drawn.overlaps.slice(0, 3).join("; ")}`);
    check(drawn.outside.length === 0, `${lang}: every step's text inside its shape ${drawn.outside.slice(0, 3).join("; ")}`);
    check(!drawn.cut, `${lang}: no label cut`);
    check(drawn.size >= 11.5, `${lang}: drawn at ${drawn.size.toFixed(1)} px text`);
    await shootElement(operator.locator("svg.diagram"), `diagram-${lang}`);
  }
  await operator.goto(`${base}lang?to=en&back=/regulation`);
  await shoot(operator, "regulation");
  await accessible(operator, "the regulation");
  await operator.goto(`${base}sla`);
  await shoot(operator, "sla");
  await accessible(operator, "the SLA");

  // Keyboard only: log in again from the keyboard.
  await operator.goto(`${base}operator`);
  await operator.getByRole("button", { name: "Log out" }).click();
  await operator.locator("#login").focus();
  await operator.keyboard.type("operator-1");
  await operator.keyboard.press("Tab");
  await operator.keyboard.type("operator-1-password");
  await operator.keyboard.press("Enter");
  await operator.locator("#operator-id").waitFor();
  check((await text(operator, "#operator-id")) === "operator-1", "logged in with the keyboard");
  await accessible(operator, "the operator's list");

  // Keyboard: the skip link is the first stop, the menu follows.
  await operator.goto(base);
  await operator.keyboard.press("Tab");
  check(await operator.evaluate(() => document.activeElement.classList.contains("skip")), "Tab reaches the skip link");
  await operator.keyboard.press("Tab");
  await operator.keyboard.press("Tab");
  await operator.keyboard.press("Enter");
  await operator.waitForURL(`${base}operator`);
  check(true, "the menu works with the keyboard");
});
console.log("route: passed");
