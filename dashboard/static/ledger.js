// @ts-check
// Residents and sites (/admin, templates/ledger.html on the admin layout): the ledger.
// Residents: list with search and filters, the ledger entry's form (emergency contacts in
// calling order, consent records, the door code revealed only on request), the resident's
// alert settings with each refused value shown next to its field, and the timeline.
// Sites: list, create and edit, and "send test" for each group channel.
// Every label of an enumeration comes from the vocabulary (vocabulary.js); the page's own
// words are in the template (ledger.html, `_()`) or marked t() here (i18n.js); data (names,
// addresses, phones, site ids, notes) is marked translate="no".

import { leave, startAdminPage } from "./admin.js";
import { ApiError, AuthError, api } from "./api.js";
import { showDailyChart, showResidentCharts } from "./charts.js";
import { $, $button, $input, el } from "./dom.js";
import { lang, t } from "./i18n.js";
import { siteTime } from "./time.js";
import { channelLabel, deviceLabel, severityLabel, statusLabel, typeLabel, vocabulary }
  from "./vocabulary.js";

/** @typedef {import("./api.js").Session} Session */
/** @typedef {import("./vocabulary.js").Term} Term */
/** @typedef {{ok: boolean, status: number, body: any}} Answer */
/** @typedef {{loc: (string | number)[], msg: string}} FieldError */

/** @type {{session: Session | null, resident: any | null, settings: any | null, site: string | null}} */
const state = { session: null, resident: null, settings: null, site: null };

const LEDGER_TEXT = ["full_name", "phone", "care_level", "gp", "address", "access_notes",
  "health_notes"];
const LEDGER_CHOICE = ["sex", "living_situation", "status"];

// --- requests ------------------------------------------------------------------------------

/**
 * An API request answering {ok, status, body}, so that a 422's field errors reach the form.
 * @param {string} path
 * @param {{method?: string, body?: unknown}} [options]
 * @returns {Promise<Answer>}
 */
async function send(path, options = {}) {
  try {
    return { ok: true, status: 200, body: await api(path, options) };
  } catch (err) {
    // The page shows a refused value next to its field, so it needs the whole answer.
    if (err instanceof ApiError) return { ok: false, status: err.status, body: err.body };
    throw err;
  }
}

/**
 * The answer's body, or an Error with the server's message.
 * @param {Answer} answer
 * @returns {any}
 */
function bodyOrThrow(answer) {
  if (!answer.ok) throw new Error(answer.body && answer.body.detail || t("HTTP {status}", { status: answer.status }));
  return answer.body;
}

/**
 * Run an action; a lost session goes back to the login form, other errors to `where`.
 * @param {string} where id of the message element
 * @param {() => Promise<void>} action
 */
async function guarded(where, action) {
  try {
    await action();
  } catch (err) {
    if (err instanceof AuthError) return logout(err.message);
    $(where).textContent = err instanceof Error ? err.message : String(err);
  }
}

// --- vocabulary ----------------------------------------------------------------------------

/**
 * @param {Term[]} terms
 * @param {string} value
 * @returns {string}
 */
function labelOf(terms, value) {
  const term = terms.find((x) => x.value === value);
  return term ? term.label : value;
}

/**
 * Append one option per term to a select.
 * @param {string} id
 * @param {Term[]} terms
 */
function fillSelect(id, terms) {
  $(id).append(...terms.map((x) => el("option", { value: x.value }, x.label)));
}

// --- residents list ------------------------------------------------------------------------

async function loadResidents() {
  const params = new URLSearchParams();
  const q = $input("filter-q").value.trim();
  if (q) params.set("q", q);
  for (const [key, id] of [["site", "filter-site"], ["risk", "filter-risk"],
    ["status", "filter-status"]]) {
    const value = /** @type {HTMLSelectElement} */ ($(id)).value;
    if (value) params.set(key, value);
  }
  const residents = bodyOrThrow(await send(`/residents?${params}`));
  $("residents-empty").hidden = residents.length > 0;
  $("resident-rows").replaceChildren(...residents.map(residentRow));
}

/** @param {any} r @returns {HTMLTableRowElement} */
function residentRow(r) {
  const row = el("tr", { tabIndex: 0, dataset: { id: String(r.id) } },
    el("td", { translate: false }, r.full_name),
    el("td", { translate: false }, r.site_id),
    el("td", {}, labelOf(vocabulary.resident_statuses, r.status)),
    el("td", {}, r.risks.map((/** @type {string} */ k) => labelOf(vocabulary.risks, k)).join(", ")),
    el("td", {}, r.birth_year ?? ""),
    el("td", { translate: false }, r.phone ?? ""));
  const open = () => guarded("admin-message", () => openResident(r.id));
  row.addEventListener("click", open);
  row.addEventListener("keydown", (event) => { if (event.key === "Enter") open(); });
  return row;
}

// --- the ledger form -----------------------------------------------------------------------

/**
 * @param {string} name
 * @returns {HTMLInputElement}
 */
function field(name) {
  return $input(`f-${name}`);
}

/** @param {number | null} id */
async function openResident(id) {
  const form = $("resident-form");
  form.dataset.loaded = "";  // set again once the entry is shown (a test waits for it)
  clearErrors(form);
  $("form-message").textContent = "";
  $("form-message").classList.remove("ok");
  $("revealed-code").textContent = "";
  const resident = id === null ? null : bodyOrThrow(await send(`/residents/${id}`));
  state.resident = resident;
  $("editor-heading").textContent = resident ? resident.full_name : $("new-resident").textContent || "";
  $("editor-heading").translate = resident === null;  // a name is data
  field("site_id").disabled = resident !== null;
  field("site_id").value = resident ? resident.site_id : (state.session?.site_id || field("site_id").value);
  for (const name of [...LEDGER_TEXT, ...LEDGER_CHOICE, "birth_year", "birth_date"]) {
    field(name).value = resident && resident[name] !== null ? String(resident[name]) : "";
  }
  if (!resident) field("status").value = "active";
  field("door_code").value = "";
  field("door_code").placeholder = resident && resident.has_door_code ? t("set (unchanged)")
    : t("not set");
  $button("reveal-access").hidden = !(resident && resident.has_door_code);
  for (const box of riskBoxes()) box.checked = Boolean(resident && resident.risks.includes(box.value));
  $("contacts").replaceChildren();
  for (const contact of resident ? resident.contacts : []) addContact(contact);
  $("consents").replaceChildren(...(resident ? resident.consents : []).map(consentItem));
  for (const id of ["consent-by", "consent-on", "consent-method"]) $input(id).value = "";
  $("resident-editor").hidden = false;
  $("alert-settings").hidden = resident === null;
  $("timeline-section").hidden = resident === null;
  showResidentCharts(resident);  // draws on its own; its errors stay in its section
  showDailyChart(resident);  // the daily routine and its usual band (issue 15)
  if (resident) {
    await Promise.all([loadSettings(resident.id), loadTimeline(resident.id)]);
  }
  form.dataset.loaded = resident ? String(resident.id) : "new";
  $("resident-editor").scrollIntoView({ block: "start" });
  field("full_name").focus();
}

/** @returns {HTMLInputElement[]} */
function riskBoxes() {
  return [...$("f-risks").querySelectorAll("input")];
}

/** @param {any} c @returns {HTMLLIElement} */
function consentItem(c) {
  const answer = c.granted ? "✓" : "✗";
  return el("li", {}, `${answer} ${labelOf(vocabulary.consent_kinds, c.kind)} · `,
    el("span", { translate: false }, c.given_by), ` · ${c.given_on} · `,
    el("span", { translate: false }, c.method));
}

/** @param {{name?: string, relation?: string, phone?: string, notified?: boolean}} [contact] */
function addContact(contact = {}) {
  const template = /** @type {HTMLTemplateElement} */ ($("contact-template"));
  const item = /** @type {HTMLLIElement} */ (template.content.firstElementChild?.cloneNode(true));
  /** @param {string} cls @returns {HTMLInputElement} */
  const part = (cls) => /** @type {HTMLInputElement} */ (item.querySelector(`.${cls}`));
  part("c-name").value = contact.name || "";
  part("c-relation").value = contact.relation || "";
  part("c-phone").value = contact.phone || "";
  part("c-notified").checked = contact.notified !== false;
  part("c-up").addEventListener("click", () => {
    if (item.previousElementSibling) item.previousElementSibling.before(item);
  });
  part("c-down").addEventListener("click", () => {
    if (item.nextElementSibling) item.nextElementSibling.after(item);
  });
  part("c-remove").addEventListener("click", () => item.remove());
  $("contacts").append(item);
}

/** @returns {any[]} the contacts in calling order */
function contactsOfForm() {
  return [...$("contacts").children].map((item) => {
    /** @param {string} cls @returns {HTMLInputElement} */
    const part = (cls) => /** @type {HTMLInputElement} */ (item.querySelector(`.${cls}`));
    return { name: part("c-name").value.trim(), relation: part("c-relation").value.trim(),
      phone: part("c-phone").value.trim(), notified: part("c-notified").checked };
  });
}

/** @returns {Record<string, unknown>} the request body of the form */
function ledgerBody() {
  /** @type {Record<string, unknown>} */
  const body = {};
  for (const name of [...LEDGER_TEXT, ...LEDGER_CHOICE, "birth_date"]) {
    const value = field(name).value.trim();
    body[name] = value === "" ? null : value;
  }
  const year = field("birth_year").value.trim();
  body.birth_year = year === "" ? null : Number(year);
  body.risks = riskBoxes().filter((b) => b.checked).map((b) => b.value);
  body.contacts = contactsOfForm();
  const code = field("door_code").value;
  if (code) body.door_code = code;
  const by = $input("consent-by").value.trim();
  if (by) {
    body.new_consents = [{
      kind: /** @type {HTMLSelectElement} */ ($("consent-kind")).value,
      granted: /** @type {HTMLSelectElement} */ ($("consent-granted")).value === "true",
      given_by: by, given_on: $input("consent-on").value || null,
      method: $input("consent-method").value.trim(),
    }];
  }
  if (!state.resident) body.site_id = field("site_id").value;
  return body;
}

/** @param {HTMLElement} root */
function clearErrors(root) {
  for (const node of root.querySelectorAll(".field-error")) {
    if (node.classList.contains("c-error")) node.textContent = "";
    else node.remove();
  }
}

/**
 * Show each refused value next to its field: loc ["body", field, ...] names it; a contact's
 * error goes to its row; the rest to the form's message.
 * @param {HTMLElement} form
 * @param {string} messageId
 * @param {FieldError[]} errors
 * @param {(loc: (string | number)[]) => HTMLElement | null} locate
 */
function showErrors(form, messageId, errors, locate) {
  clearErrors(form);
  $(messageId).classList.remove("ok");
  const general = [];
  for (const error of errors) {
    const target = locate(error.loc.slice(1));
    if (!target) {
      general.push(error.msg);
      continue;
    }
    if (target.classList.contains("c-error")) target.textContent = error.msg;
    else target.append(el("span", { className: "field-error", role: "alert" }, error.msg));
  }
  $(messageId).textContent = general.join("; ") || $(messageId).dataset.invalid || "";
}

/** @param {(string | number)[]} loc @returns {HTMLElement | null} */
function ledgerField(loc) {
  const [name, index] = loc;
  if (name === "contacts" && typeof index === "number") {
    const row = $("contacts").children[index];
    return row ? /** @type {HTMLElement | null} */ (row.querySelector(".c-error")) : null;
  }
  return /** @type {HTMLElement | null} */ ($("resident-form").querySelector(
    `[data-field="${String(name)}"]`));
}

async function saveResident() {
  const resident = state.resident;
  const answer = resident
    ? await send(`/residents/${resident.id}`, { method: "PATCH", body: ledgerBody() })
    : await send("/residents", { method: "POST", body: ledgerBody() });
  if (answer.status === 422 && answer.body.errors) {
    showErrors($("resident-form"), "form-message", answer.body.errors, ledgerField);
    return;
  }
  const saved = bodyOrThrow(answer);
  await Promise.all([openResident(saved.id), loadResidents()]);
  const message = $("form-message");
  message.textContent = message.dataset.saved || "";
  message.classList.add("ok");
}

async function revealAccess() {
  if (!state.resident) return;
  const access = bodyOrThrow(await send(`/residents/${state.resident.id}/reveal-access`,
    { method: "POST" }));
  $("revealed-code").textContent = access.door_code || "";
}

// --- alert settings ------------------------------------------------------------------------

/**
 * The leaves of a settings document, by dotted path (lists are not edited here).
 * @param {any} doc
 * @param {string} [prefix]
 * @returns {[string, any][]}
 */
function leaves(doc, prefix = "") {
  return Object.entries(doc).flatMap(([key, value]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      return leaves(value, path);
    }
    return Array.isArray(value) ? [] : [[path, value]];
  });
}

/** @param {any} doc @param {string} path @returns {any} */
function valueAt(doc, path) {
  return path.split(".").reduce((node, key) => (node && typeof node === "object" ? node[key]
    : undefined), doc);
}

/** @param {any} doc @param {string} path @param {any} value */
function setAt(doc, path, value) {
  const keys = path.split(".");
  const last = /** @type {string} */ (keys.pop());
  let node = doc;
  for (const key of keys) {
    if (typeof node[key] !== "object" || node[key] === null) node[key] = {};
    node = node[key];
  }
  node[last] = value;
}

/**
 * The words of the settings document's keys (alerts/config.py AlertSettings). In English they
 * are the keys themselves in words ("sos cancel window s"), as administrators know them from
 * the settings file; other languages translate them.
 * @returns {Record<string, string>}
 */
function settingWords() {
  return {
    sos_cancel_window_s: t("sos cancel window s"), night_start: t("night start"),
    night_end: t("night end"), bed_exit_min_occupied_s: t("bed exit min occupied s"),
    bed_exit_return_s: t("bed exit return s"), heart_rate: t("heart rate"),
    respiration: t("respiration"), apnea_s: t("apnea s"), not_up_at: t("not up at"),
    not_up_after_usual_rise_s: t("not up after usual rise s"),
    usual_rise_default: t("usual rise default"), rise_margin_s: t("rise margin s"),
    long_absence_s: t("long absence s"), usual_day_default_s: t("usual day default s"),
    long_absence_margin_s: t("long absence margin s"), offline_heartbeats: t("offline heartbeats"),
    default_heartbeat_s: t("default heartbeat s"), low_battery_percent: t("low battery percent"),
    low_battery_clear_margin: t("low battery clear margin"), never_heard_s: t("never heard s"),
    test_overdue_s: t("test overdue s"), severity: t("severity"), refractory_s: t("refractory s"),
    urgent_at_or_below: t("urgent at or below"), urgent_at_or_above: t("urgent at or above"),
    urgent_sustain_s: t("urgent sustain s"), warning_at_or_above: t("warning at or above"),
    warning_sustain_s: t("warning sustain s"), normal_low: t("normal low"),
    normal_high: t("normal high"), clear_after_s: t("clear after s"),
    routine_change: t("routine change"), outlier_digest: t("outlier digest"),
    enabled: t("enabled"), sensitivity: t("sensitivity"), cooldown_days: t("cooldown days"),
    ewma_lambda: t("ewma lambda"), threshold: t("threshold"), min_nights: t("min nights"),
    recent_nights: t("recent nights"), min_z: t("min z"), z_clip: t("z clip"),
    rearm: t("rearm"),
  };
}

/**
 * A setting's label from its dotted path: "heart rate.urgent at or below" in English; the
 * translated words of its parts otherwise, an alert type (severity.fall, refractory_s.fall)
 * named by the vocabulary. A key without words (a newer server) is shown as it is.
 * @param {string} path
 * @returns {string}
 */
function settingLabel(path) {
  const words = settingWords();
  const parts = path.split(".");
  const typed = parts[0] === "severity" || parts[0] === "refractory_s";
  const named = parts.map((key, i) => {
    if (typed && i === 1 && lang !== "en") return typeLabel(key);
    return Object.prototype.hasOwnProperty.call(words, key) ? words[key] : key.replace(/_/g, " ");
  });
  return named.length === 2 ? t("{group}.{setting}", { group: named[0], setting: named[1] })
    : named.join(".");
}

/** @param {number} id */
async function loadSettings(id) {
  state.settings = bodyOrThrow(await send(`/residents/${id}/alert-settings`));
  const override = state.settings.override || {};
  const form = $("alert-settings-form");
  form.replaceChildren(...leaves(state.settings.effective).map(([path, value]) => {
    const input = el("input", { name: path, dataset: { path } });
    if (typeof value === "boolean") {
      input.type = "checkbox";
      input.checked = value;
    } else {
      input.type = typeof value === "number" ? "number" : "text";
      if (typeof value === "number") input.step = "any";
      input.value = value === null ? "" : String(value);
    }
    const overridden = valueAt(override, path) !== undefined;
    return el("label", { className: overridden ? "overridden" : "", dataset: { field: path } },
      settingLabel(path), input);
  }));
  $("settings-message").textContent = "";
}

/** @returns {any} the override the form asks for: the stored one plus every changed value */
function overrideOfForm() {
  const override = structuredClone(state.settings.override || {});
  for (const input of $("alert-settings-form").querySelectorAll("input")) {
    const path = input.dataset.path || "";
    const before = valueAt(state.settings.effective, path);
    let value;
    if (input.type === "checkbox") value = input.checked;
    else if (input.type === "number") value = input.value === "" ? null : Number(input.value);
    else value = input.value;
    if (value !== before) setAt(override, path, value);
  }
  return override;
}

/** @param {any} override */
async function putSettings(override) {
  if (!state.resident) return;
  const answer = await send(`/residents/${state.resident.id}/alert-settings`,
    { method: "PUT", body: override });
  if (answer.status === 422 && answer.body.errors) {
    const form = $("alert-settings-form");
    showErrors(form, "settings-message", answer.body.errors, (loc) => /** @type {HTMLElement | null} */ (
      form.querySelector(`[data-field="${loc.join(".")}"]`)));
    return;
  }
  bodyOrThrow(answer);
  await loadSettings(state.resident.id);
  $("settings-message").textContent = "";
}

// --- timeline ------------------------------------------------------------------------------

/**
 * What a timeline entry's kind is called, and the fixed words the timeline answers with
 * (dashboard/ledger/store.py), in the page's language; anything else is shown as it came.
 * @param {string} text
 * @returns {string}
 */
function timelineWord(text) {
  /** @type {Record<string, string>} */
  const words = {
    alert: t("alert"), device_added: t("device added"), device_removed: t("device removed"),
    note: t("note"), visit: t("visit"), provisioned: t("provisioned"), revoked: t("revoked"),
    "moved here from another resident": t("moved here from another resident"),
    "moved to another resident": t("moved to another resident"),
    "follow-up needed": t("follow-up needed"), completed: t("completed"),
  };
  return Object.prototype.hasOwnProperty.call(words, text) ? words[text]
    : text.replace(/_/g, " ");
}

/**
 * The summary and detail of a timeline entry: an alert's type, severity, status and outcome
 * and a device's type in the vocabulary's words; a note's author and text, a visit's
 * findings as data (never translated).
 * @param {any} e
 * @returns {(string | HTMLElement)[]}
 */
function timelineText(e) {
  const data = (/** @type {string} */ text) => el("span", { translate: false }, text);
  if (e.kind === "alert") {
    const what = /^(\w+) \((\w+)\)$/.exec(e.summary || "");
    const [status, outcome] = String(e.detail || "").split(": ");
    const outcomeText = outcome
      ? `: ${(vocabulary.outcomes.find((o) => o.value === outcome) || { label: outcome }).label}`
      : "";
    return [what ? `${typeLabel(what[1])} (${severityLabel(what[2])})` : e.summary,
      e.detail ? ` — ${statusLabel(status)}${outcomeText}` : ""];
  }
  if (e.kind === "device_added" || e.kind === "device_removed") {
    return [deviceLabel(e.summary), e.detail ? ` — ${timelineWord(e.detail)}` : ""];
  }
  if (e.kind === "visit") {
    return [timelineWord(e.summary), ...(e.detail ? [" — ", data(e.detail)] : [])];
  }
  return [data(e.summary), ...(e.detail ? [" — ", data(e.detail)] : [])];
}

/** @param {number} id */
async function loadTimeline(id) {
  const entries = bodyOrThrow(await send(`/residents/${id}/timeline`));
  $("timeline").replaceChildren(...entries.map((/** @type {any} */ e) => el("li", {},
    el("time", { dateTime: e.at }, siteTime(e.at, state.resident?.site_timezone || "UTC")), " ",
    el("span", { className: "kind" }, timelineWord(e.kind)),
    ...timelineText(e))));
}

async function addNote() {
  const body = $input("note-body").value.trim();
  if (!state.resident || !body) return;
  bodyOrThrow(await send(`/residents/${state.resident.id}/notes`, { method: "POST", body: { body } }));
  $input("note-body").value = "";
  await loadTimeline(state.resident.id);
}

// --- sites ---------------------------------------------------------------------------------

async function loadSites() {
  const sites = bodyOrThrow(await send("/sites"));
  for (const id of ["filter-site", "f-site_id"]) {
    const select = /** @type {HTMLSelectElement} */ ($(id));
    const keep = select.value;
    for (const option of [...select.options]) if (option.value) option.remove();
    select.append(...sites.map((/** @type {any} */ s) => el("option",
      { value: s.id, translate: false }, `${s.name} (${s.id})`)));
    select.value = keep;
  }
  $("site-list").replaceChildren(...sites.map((/** @type {any} */ s) => el("li", {},
    siteButton(s))));
}

/** @param {any} site @returns {HTMLButtonElement} */
function siteButton(site) {
  const button = el("button", { type: "button", className: "secondary", translate: false },
    `${site.name} (${site.id}) · ${site.timezone}${site.address ? ` · ${site.address}` : ""}`);
  button.addEventListener("click", () => guarded("site-message", () => openSite(site)));
  return button;
}

/** @param {any | null} site */
async function openSite(site) {
  state.site = site ? site.id : null;
  clearErrors($("site-form"));
  $("site-message").textContent = "";
  $input("s-id").value = site ? site.id : "";
  $input("s-id").disabled = site !== null;
  $input("s-name").value = site ? site.name : "";
  $input("s-timezone").value = site ? site.timezone : "";
  /** @type {HTMLSelectElement} */ ($("s-language")).value = site ? site.language : "en";
  $input("s-address").value = site && site.address ? site.address : "";
  $("site-form-legend").textContent = site ? `${site.name} (${site.id})` : $("new-site").textContent || "";
  $("site-form-legend").translate = site === null;  // a site's name is data
  $("channel-list").replaceChildren();
  $("channel-message").textContent = "";
  if (site) await loadChannels(site.id);
}

/** @param {string} site */
async function loadChannels(site) {
  const answer = await send(`/sites/${site}/channels`);
  if (!answer.ok) {
    $("channel-message").textContent = answer.body && answer.body.detail || "";
    return;
  }
  $("channel-list").replaceChildren(...answer.body.map((/** @type {any} */ c) => {
    const button = el("button", { type: "button", className: "secondary",
      dataset: { channel: String(c.id) } }, $("channel-message").dataset.testLabel || "");
    button.addEventListener("click", () => guarded("channel-message", async () => {
      button.disabled = true;
      try {
        const result = bodyOrThrow(await send(`/sites/${site}/channels/${c.id}/test`,
          { method: "POST" }));
        $("channel-message").replaceChildren(`${channelLabel(c.kind)} `,
          el("span", { translate: false }, c.target || ""), `: ${result.detail}`);
      } finally {
        button.disabled = false;
      }
    }));
    return el("li", {}, el("span", {}, `${channelLabel(c.kind)} · `),
      el("span", { translate: false }, c.target || ""), button);
  }));
}

async function saveSite() {
  const body = {
    name: $input("s-name").value.trim(),
    timezone: $input("s-timezone").value.trim() || "UTC",
    language: /** @type {HTMLSelectElement} */ ($("s-language")).value,
    address: $input("s-address").value.trim() || null,
  };
  const answer = state.site
    ? await send(`/sites/${state.site}`, { method: "PATCH", body })
    : await send("/sites", { method: "POST", body: { id: $input("s-id").value.trim(), ...body } });
  if (answer.status === 422 && answer.body.errors) {
    showErrors($("site-form"), "site-message", answer.body.errors, (loc) => /** @type {HTMLElement | null} */ (
      $("site-form").querySelector(`[data-field="${String(loc[0])}"]`)));
    return;
  }
  const saved = bodyOrThrow(answer);
  await loadSites();
  await openSite(saved);
  $("site-message").textContent = "";
}

// --- start ---------------------------------------------------------------------------------

/** @param {Session} session */
async function enter(session) {
  state.session = session;
  await guarded("admin-message", async () => {
    await loadSites();
    await loadResidents();
    // `/admin?resident=ID` (the duty screen's daily digest links here) opens that resident
    const wanted = Number(new URLSearchParams(location.search).get("resident"));
    if (Number.isInteger(wanted) && wanted > 0) await openResident(wanted);
  });
}

/** @param {string} [message] */
function logout(message = "") {
  state.session = null;
  state.resident = null;
  leave(message);
}

function wire() {
  fillSelect("filter-risk", vocabulary.risks);
  fillSelect("filter-status", vocabulary.resident_statuses);
  fillSelect("f-sex", vocabulary.sexes);
  fillSelect("f-living_situation", vocabulary.living_situations);
  fillSelect("f-status", vocabulary.resident_statuses);
  fillSelect("consent-kind", vocabulary.consent_kinds);
  $("f-risks").append(...vocabulary.risks.map((x) => el("label", {},
    el("input", { type: "checkbox", value: x.value, name: "risks" }), x.label)));
  $("resident-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded("admin-message", loadResidents);
  });
  $("new-resident").addEventListener("click", () => guarded("admin-message", () => openResident(null)));
  $("add-contact").addEventListener("click", () => addContact());
  $("resident-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded("form-message", saveResident);
  });
  $("close-editor").addEventListener("click", () => { $("resident-editor").hidden = true; });
  $("reveal-access").addEventListener("click", () => guarded("form-message", revealAccess));
  $("save-settings").addEventListener("click", () => guarded("settings-message",
    () => putSettings(overrideOfForm())));
  $("clear-settings").addEventListener("click", () => guarded("settings-message",
    () => putSettings({})));
  $("note-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded("admin-message", addNote);
  });
  $("site-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded("site-message", saveSite);
  });
  $("new-site").addEventListener("click", () => guarded("site-message", () => openSite(null)));
  startAdminPage(enter);
}

wire();
