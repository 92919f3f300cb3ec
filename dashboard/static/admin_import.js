// @ts-check
// Bulk import (/admin/import): upload a CSV/XLSX sheet, dry run or import, the error report
// and the devices' credentials as downloadable CSV files (the credentials shown once).

import { API, ApiError, AuthError, detailOf, loadSession } from "./api.js";
import { leave, startAdminPage } from "./admin.js";
import { $, $button, $input, el } from "./dom.js";
import { clearFieldErrors, fieldErrorsOf, showFieldErrors } from "./form_errors.js";
import { lang, t } from "./i18n.js";

/**
 * @param {HTMLElement} link
 * @param {string | null} text CSV, or null to hide the link
 */
function offer(link, text) {
  const a = /** @type {HTMLAnchorElement} */ (link);
  if (a.href.startsWith("blob:")) URL.revokeObjectURL(a.href);
  a.hidden = text === null;
  if (text !== null) a.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
}

/** @param {SubmitEvent} event */
async function upload(event) {
  event.preventDefault();
  const file = $input("import-file").files?.[0];
  $("import-message").textContent = "";
  if (!file) {
    $("import-message").textContent = t("Choose a file first.");
    return;
  }
  const session = loadSession();
  if (!session) {
    leave(t("Please log in."));
    return;
  }
  const sheet = /** @type {HTMLFormElement} */ ($("import-form"));
  clearFieldErrors(sheet);
  const form = new FormData();
  form.append("file", file);
  form.append("dry_run", $input("import-dry-run").checked ? "true" : "false");
  const site = $input("import-site").value.trim();
  if (site) form.append("site", site);
  const button = $button("import-button");
  button.disabled = true;
  try {
    const resp = await fetch(`${API}/import`, { method: "POST", body: form, cache: "no-store",
      headers: { Authorization: `Bearer ${session.access_token}`, "Accept-Language": lang } });
    if (resp.status === 401) throw new AuthError(await detailOf(resp));
    if (!resp.ok) {
      const body = await resp.json().catch(() => null);
      throw new ApiError(body && typeof body.detail === "string" ? body.detail
        : t("HTTP {status}", { status: resp.status }), resp.status, body);
    }
    show(await resp.json());
  } catch (err) {
    const errors = err instanceof ApiError ? fieldErrorsOf(err.body) : [];
    if (err instanceof AuthError) leave(err.message);
    else if (errors.length) $("import-message").textContent = showFieldErrors(sheet, errors).join("; ");
    else $("import-message").textContent = err.message;
  } finally {
    button.disabled = false;
  }
}

/**
 * What an import made (or a dry run would make): residents, devices, broker accounts. Each
 * count is one whole text per number form ("1 resident", "{n} residents"), so a translation
 * never glues words to numbers.
 * @param {any} report
 * @returns {string}
 */
function creations(report) {
  const residents = report.residents === 1 ? t("1 resident")
    : t("{n} residents", { n: report.residents });
  const devices = report.devices === 1 ? t("1 device") : t("{n} devices", { n: report.devices });
  const accounts = report.broker_accounts === 1 ? t("1 broker account")
    : t("{n} broker accounts", { n: report.broker_accounts });
  return t("{residents}, {devices} and {accounts}", { residents, devices, accounts });
}

/** @param {any} report @returns {string} the report's one-line summary */
function summary(report) {
  if (report.applied) return t("Imported {what}.", { what: creations(report) });
  if (report.errors) {
    const problems = report.errors === 1 ? t("1 problem")
      : t("{n} problems", { n: report.errors });
    const rows = report.rows === 1 ? t("1 row") : t("{n} rows", { n: report.rows });
    return t("{problems} in {rows}: nothing was imported.", { problems, rows });
  }
  const what = creations(report);
  return report.valid_rows === 1
    ? t("Dry run: 1 row is valid; importing would create {what}. Untick \"Dry run\" to import.",
      { what })
    : t("Dry run: {n} rows are valid; importing would create {what}. Untick \"Dry run\" to import.",
      { n: report.valid_rows, what });
}

/** @param {any} report */
function show(report) {
  $("import-summary").textContent = summary(report);
  // Row and column name the sheet's own cells (data); the problem is the server's message.
  $("import-errors").replaceChildren(...report.error_list.map(
    (/** @type {any} */ e) => el("tr", {}, el("td", {}, e.row),
      el("td", { translate: false }, e.column), el("td", {}, e.message))));
  $("import-errors-table").hidden = report.errors === 0;
  offer($("import-errors-link"), report.errors ? report.errors_csv : null);
  offer($("import-creds-link"), report.credentials_csv);
}

/** @type {HTMLFormElement} */ ($("import-form")).addEventListener("submit", upload);
startAdminPage(async () => {});
