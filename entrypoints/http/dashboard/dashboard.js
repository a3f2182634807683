// The dashboard: asks for a token once (kept in sessionStorage: this tab only), then shows
// GET /m2/migration/overview every 2 seconds. Every value on the page is an element with
// data-field="<path in that JSON>" showing the value as the API gave it (numbers with thousands
// separators; data-null / data-true / data-false name what null and booleans read as).
"use strict";

const OVERVIEW = "/m2/migration/overview";
const FAILURES = "/m2/migration/failures";
const EVERY_MS = 2000;
const TOKEN_KEY = "user-migration-token";
const numbers = new Intl.NumberFormat("en-US", { maximumFractionDigits: 3 });
const percents = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

let timer = null;

function $(selector) {
  return document.querySelector(selector);
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function status(text) {
  $("#status").textContent = text;
}

function valueAt(data, path) {
  return path.split(".").reduce((value, key) => (value === null || value === undefined ? undefined : value[key]), data);
}

// Ids go up to 2**63 - 1, past what a JavaScript number holds exactly: such integers are read as
// BigInt from their own text (where the browser tells it), so that they show as the API wrote them.
function exactly(key, value, context) {
  if (typeof value === "number" && !Number.isSafeInteger(value) && /^-?\d+$/.test(context?.source ?? "")) {
    return BigInt(context.source);
  }
  return value;
}

function shown(value, element) {
  if (value === null || value === undefined) return element.dataset.null ?? "—";
  if (typeof value === "boolean") return value ? element.dataset.true ?? "yes" : element.dataset.false ?? "no";
  if (typeof value === "bigint") return numbers.format(value);
  if (typeof value === "number") {
    return "percent" in element.dataset ? `${percents.format(value * 100)} %` : numbers.format(value);
  }
  return String(value);
}

function words(seconds) {
  if (seconds === null) return "";
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  return hours > 0 ? `(about ${hours} h ${minutes} min)` : `(about ${minutes} min ${seconds % 60} s)`;
}

function renderCells(cells) {
  const list = $("#cells");
  const template = $("#cell-template");
  list.replaceChildren();
  cells.forEach((cell, position) => {
    const item = template.content.firstElementChild.cloneNode(true);
    item.classList.add(`state-${cell.state}`);
    item.querySelector(".cell-state").dataset.field = `segments.cells.${position}.state`;
    for (const part of item.querySelectorAll("[data-part]")) {
      part.dataset.field = `segments.cells.${position}.${part.dataset.part}`;
    }
    const bar = item.querySelector("progress");
    if (cell.progress === null) bar.removeAttribute("value");
    else bar.value = cell.progress;
    bar.setAttribute("aria-label", `segment ${cell.index} progress`);
    list.append(item);
  });
  $("#no-cells").hidden = cells.length > 0;
}

function field(tag, path, extra = {}) {
  const element = document.createElement(tag);
  element.dataset.field = path;
  Object.assign(element.dataset, extra);
  return element;
}

function renderReasons(reasons) {
  const body = $("#reasons tbody");
  body.replaceChildren();
  if (reasons.length === 0) {
    const row = body.insertRow();
    const cell = row.insertCell();
    cell.colSpan = 3;
    cell.textContent = "No failing users.";
    return;
  }
  reasons.forEach((reason, position) => {
    const row = body.insertRow();
    row.insertCell().append(field("code", `failures.by_reason.${position}.code`));
    row.insertCell().append(field("span", `failures.by_reason.${position}.users`));
    const examples = row.insertCell();
    reason.example_user_ids.forEach((_, index) => {
      if (index > 0) examples.append(", ");
      examples.append(field("span", `failures.by_reason.${position}.example_user_ids.${index}`));
    });
  });
}

function countsList(counts, path) {
  const list = document.createElement("dl");
  list.className = "figures";
  for (const name of Object.keys(counts)) {
    const entry = document.createElement("div");
    const term = document.createElement("dt");
    term.textContent = name.replaceAll("_", " ");
    const value = field("dd", `${path}.${name}`);
    entry.append(term, value);
    list.append(entry);
  }
  return list;
}

function renderVerify(verify) {
  const place = $("#verify");
  place.replaceChildren();
  if (verify === null) {
    place.append(field("p", "verify", { null: "none yet: no verify has run in this service process" }));
    return;
  }
  const when = document.createElement("p");
  when.append("Finished at ", field("span", "verify.finished_at"), ".");
  place.append(when, countsList(verify.counts, "verify.counts"));
}

function renderVerifyPass(pass) {
  const place = $("#verify-pass");
  place.replaceChildren();
  if (pass === null) {
    place.append(field("p", "verify_pass", { null: "none yet: no verify --workers pass has recorded a result" }));
    return;
  }
  const status = document.createElement("p");
  status.append(
    "Pass ", field("span", "verify_pass.verify_pass"), ": ",
    field("span", "verify_pass.segments_verified"), " of ", field("span", "verify_pass.segments"),
    " segments verified; finished: ", field("span", "verify_pass.finished"), ".",
  );
  place.append(status, countsList(pass.counts, "verify_pass.counts"));
}

function render(data) {
  renderCells(data.segments.cells);
  renderReasons(data.failures.by_reason);
  renderVerify(data.verify);
  renderVerifyPass(data.verify_pass);
  for (const element of document.querySelectorAll("#board [data-field]")) {
    element.textContent = shown(valueAt(data, element.dataset.field), element);
  }
  $("#eta-words").textContent = words(data.pace.eta_seconds);
  document.body.dataset.generatedAt = data.generated_at;
}

async function problem(response) {
  try {
    const body = await response.json();
    return `${response.status} ${body.error}: ${body.message}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

function signOut(message) {
  clearTimeout(timer);
  sessionStorage.removeItem(TOKEN_KEY);
  $("#board").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message;
  status("Not connected: enter a token.");
}

async function poll() {
  const started = Date.now();
  try {
    const response = await fetch(OVERVIEW, { headers: { Authorization: `Bearer ${token()}` }, cache: "no-store" });
    if (response.status === 401 || response.status === 403) {
      signOut(`The token was refused (${await problem(response)}).`);
      return;
    }
    if (!response.ok) {
      status(`The service answered ${await problem(response)}; trying again.`);
    } else {
      render(JSON.parse(await response.text(), exactly));
      $("#board").hidden = false;
      $("#login").hidden = true;
      status(`Live: updated at ${new Date().toLocaleTimeString("en-GB")}.`);
    }
  } catch (error) {
    status(`The service cannot be reached (${error.message}); trying again.`);
  }
  timer = setTimeout(poll, Math.max(EVERY_MS - (Date.now() - started), 0));
}

async function download() {
  const response = await fetch(FAILURES, { headers: { Authorization: `Bearer ${token()}` }, cache: "no-store" });
  if (!response.ok) {
    status(`The download failed: ${await problem(response)}.`);
    return;
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = "failing-users.jsonl";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login").addEventListener("submit", (event) => {
    event.preventDefault();
    const given = $("#token").value.trim();
    if (!given) return;
    sessionStorage.setItem(TOKEN_KEY, given);
    $("#token").value = "";
    $("#login-error").textContent = "";
    status("Connecting…");
    poll();
  });
  $("#forget").addEventListener("click", () => signOut(""));
  $("#download").addEventListener("click", download);
  if (token()) poll();
});
