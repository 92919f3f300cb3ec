// @ts-check
// Bulk import (/admin/import): upload a CSV/XLSX sheet, dry run or import, the error report
// and the devices' credentials as downloadable CSV files (the credentials shown once).

import { API, ApiError, AuthError, detailOf, loadSession } from "./api.js";
import { leave, startAdminPage } from "./admin.js";
import { $, $button, $input, el } from "./dom.js";
import { clearFieldErrors, fieldErrorsOf, showFieldErrors } from "./form_errors.js";

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
    $("import-message").textContent = "Choose a file first.";
    return;
  }
  const session = loadSession();
  if (!session) {
    leave("Please log in.");
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
      headers: { Authorization: `Bearer ${session.access_token}` } });
    if (resp.status === 401) throw new AuthError(await detailOf(resp));
    if (!resp.ok) {
      const body = await resp.json().catch(() => null);
      throw new ApiError(body && typeof body.detail === "string" ? body.detail
        : `HTTP ${resp.status}`, resp.status, body);
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
 * "1 device", "3 devices".
 * @param {number} n
 * @param {string} one
 * @param {string} [many] default: `one` + "s"
 */
export function counted(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * What an import made (or a dry run would make): residents, devices, broker accounts.
 * @param {any} report
 */
function creations(report) {
  return `${counted(report.residents, "resident")}, ${counted(report.devices, "device")} `
    + `and ${counted(report.broker_accounts, "broker account")}`;
}

/** @param {any} report */
function show(report) {
  const what = report.applied
    ? `Imported ${creations(report)}.`
    : report.errors
      ? `${counted(report.errors, "problem")} in ${counted(report.rows, "row")}: `
        + "nothing was imported."
      : `Dry run: ${counted(report.valid_rows, "row")} `
        + `${report.valid_rows === 1 ? "is" : "are"} valid; importing would create `
        + `${creations(report)}. Untick "Dry run" to import.`;
  $("import-summary").textContent = what;
  $("import-errors").replaceChildren(...report.error_list.map(
    (/** @type {any} */ e) => el("tr", {}, el("td", {}, e.row), el("td", {}, e.column),
      el("td", {}, e.message))));
  $("import-errors-table").hidden = report.errors === 0;
  offer($("import-errors-link"), report.errors ? report.errors_csv : null);
  offer($("import-creds-link"), report.credentials_csv);
}

/** @type {HTMLFormElement} */ ($("import-form")).addEventListener("submit", upload);
startAdminPage(async () => {});
