// @ts-check
// The answer-time compliance report (/reports/answer-times): a site's day or week (the site's
// calendar, GET /api/v1/sites/{site}/answer-times/report), its verdicts against the telecare
// standard, a row per group, severity and worker, exports (CSV, XLSX: recorded in the audit
// trail) and a print layout (style.css, @media print). Metric names and verdicts come with
// the answer (`labels`); severity names from the vocabulary.

import { API, AuthError, detailOf, loadSession } from "./api.js";
import { guarded, say, startAdminPage } from "./admin.js";
import { duration, percent, shareText, verdict } from "./answer_format.js";
import { $, $button, $input, el } from "./dom.js";
import { lang, t } from "./i18n.js";
import { noteServerClock } from "./time.js";
import { severityLabel } from "./vocabulary.js";

/** @typedef {import("./answer_format.js").AnswerTimes} AnswerTimes */
/** @typedef {import("./answer_format.js").Figures} Figures */

const COLUMNS = /** @type {const} */ ([
  "opened", "acknowledged", "within_60", "within_180", "ack_median_s", "ack_p90_s",
  "resolve_median_s", "resolve_p90_s", "unanswered", "escalated", "cancelled", "auto_closed"]);

function query() {
  // The report's words, the CSV's and the XLSX's in the page's language.
  const params = new URLSearchParams({ period: /** @type {HTMLSelectElement} */ ($("report-period")).value,
    lang });
  const day = $input("report-date").value;
  if (day) params.set("date", day);
  return params.toString();
}

function base() {
  return `/sites/${encodeURIComponent($input("report-site").value.trim())}/answer-times`;
}

/** GET with the session's token. @param {string} path @returns {Promise<Response>} */
async function get(path) {
  const session = loadSession();
  if (!session) throw new AuthError(t("Please log in."));
  const resp = await fetch(API + path, { cache: "no-store",
    headers: { Authorization: `Bearer ${session.access_token}`, "Accept-Language": lang } });
  noteServerClock(resp);
  if (resp.status === 401) throw new AuthError(await detailOf(resp));
  if (!resp.ok) throw new Error(await detailOf(resp));
  return resp;
}

/** @param {Figures} f @param {string} column */
function cell(f, column) {
  if (column === "within_60" || column === "within_180") return percent(f[column].share);
  if (column.endsWith("_s")) return duration(/** @type {number | null} */ (f[/** @type {keyof Figures} */ (column)]));
  return String(f[/** @type {keyof Figures} */ (column)]);
}

/** @param {string} group @param {string} name @param {Figures} f @param {string} kind */
function row(group, name, f, kind) {
  return el("tr", { className: `report-row-${kind}` },
    el("th", { scope: "row" }, group),
    el("td", { translate: kind !== "worker" }, name),  // a worker's name is data
    ...COLUMNS.map((c) => el("td", { className: "num", dataset: { metric: c } }, cell(f, c))));
}

/** @param {AnswerTimes} data */
function paint(data) {
  const { labels } = data;
  $("report-heading").replaceChildren(`${labels.texts.report_title} · `,
    el("span", { translate: false }, data.site_id));
  $("report-period-line").replaceChildren(
    `${labels.texts.period}: ${data.start_local} – ${data.end_local} (`,
    el("span", { translate: false }, data.timezone), ")");
  $("report-note").textContent = labels.texts.alarm_calls_note;
  $input("report-date").value = data.start_local.slice(0, 10);
  $("report-verdicts").replaceChildren(...[data.alarm_calls.within_60, data.alarm_calls.within_180]
    .map((share) => {
      const v = verdict(share, labels);
      return el("p", { className: "report-verdict", dataset: { within: String(share.within_s) } },
        el("span", {}, `${labels.metrics[`within_${share.within_s}`]}: ${shareText(share, labels)}`),
        el("strong", { className: v.className }, v.text));
    }));
  $("report-head").replaceChildren(el("th", { scope: "col" }, labels.texts.group),
    el("th", { scope: "col" }, labels.texts.name),
    ...COLUMNS.map((c) => el("th", { scope: "col" }, labels.metrics[c])));
  $("report-rows").replaceChildren(
    row(labels.groups.all, "", data.all, "all"),
    row(labels.groups.alarm_calls, "", data.alarm_calls, "alarm"),
    ...data.by_severity.map((s) => row(labels.texts.severity, severityLabel(s.severity), s, "severity")),
    ...data.by_worker.map((w) => row(labels.texts.worker, w.full_name || w.username, w, "worker")));
}

/** Forget the report on screen, so a refused or failed request never leaves another
 * site's (or period's) numbers under its message. */
function clear() {
  for (const id of ["report-heading", "report-period-line", "report-note"]) $(id).textContent = "";
  for (const id of ["report-verdicts", "report-head", "report-rows"]) $(id).replaceChildren();
}

async function show() {
  say("");
  clear();
  const resp = await get(`${base()}/report?${query()}`);
  paint(await resp.json());
}

/** @param {"csv" | "xlsx"} format */
async function download(format) {
  const resp = await get(`${base()}/report.${format}?${query()}`);
  const name = /filename="([^"]+)"/.exec(resp.headers.get("Content-Disposition") || "");
  const url = URL.createObjectURL(await resp.blob());
  const link = el("a", { href: url, download: name ? name[1] : `answer-times.${format}` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

startAdminPage(async (session) => {
  $("feed-status").hidden = true;  // no live feed on this page
  const fromPage = new URLSearchParams(location.search);
  $input("report-site").value = fromPage.get("site") || session.site_id || "";
  if (fromPage.get("date")) $input("report-date").value = fromPage.get("date") || "";
  const period = fromPage.get("period");
  if (period === "week") /** @type {HTMLSelectElement} */ ($("report-period")).value = period;
  $("report-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(show);
  });
  $button("report-csv").addEventListener("click", () => guarded(() => download("csv")));
  $button("report-xlsx").addEventListener("click", () => guarded(() => download("xlsx")));
  $button("report-print").addEventListener("click", () => window.print());
  if ($input("report-site").value) await show();
});
