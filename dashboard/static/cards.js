// @ts-check
// Rendering of alerts: one card per alert, with Acknowledge / Resolve controls for staff
// who may act (duty screen and phone page alike).

import { api, AuthError } from "./api.js";
import { countdownSpan } from "./countdown.js";
import { dataSpan, el, fill } from "./dom.js";
import { t } from "./i18n.js";
import { resolveOutcomes, severityLabel, statusLabel, typeLabel } from "./vocabulary.js";

/** @typedef {import("./live.js").Item} Item */
/** @typedef {import("./live.js").LiveAlerts} LiveAlerts */
/**
 * @typedef {object} ActionOptions
 * @property {boolean} [big] the phone page's big buttons
 * @property {(error: Error) => void} onAuthError the session has ended
 * @property {boolean} [ackOnly] a wall display: Acknowledge, never Resolve
 */
/** @typedef {{root: HTMLDivElement, update(item: Item): void}} AlertActions */
/** @typedef {{root: HTMLLIElement, body: HTMLDivElement, actions: AlertActions | null}} Card */

const ACTING_ROLES = new Set(["admin", "duty_officer", "care_worker", "display"]);

/** @param {string} role @returns {boolean} */
export function canAct(role) {
  return ACTING_ROLES.has(role);
}

/**
 * The controls under one alert card. `live` applies the answer at once (the stream
 * confirms it a moment later); onAuthError(error) when the session has ended.
 * @param {LiveAlerts} live
 * @param {ActionOptions} options
 * @returns {AlertActions}
 */
function alertActions(live, { big = false, onAuthError, ackOnly = false }) {
  /** @type {Item | null} */
  let item = null;
  const message = el("p", { className: "action-message", role: "alert" });
  const ack = el("button", { type: "button", className: big ? "big" : "" }, t("Acknowledge"));
  const toggle = el("button", { type: "button", className: big ? "big secondary" : "secondary",
    "aria-expanded": "false" }, t("Resolve…"));
  const form = resolveForm();
  const buttons = el("div", { className: "action-buttons" }, ack, toggle);
  const root = el("div", { className: "alert-actions" }, buttons, form.root, message);

  /** @param {string} text @param {string} [kind] */
  function say(text, kind = "error") {
    message.textContent = text;
    message.className = `action-message action-message--${kind}`;
  }

  /**
   * @param {HTMLButtonElement} button
   * @param {string} label
   * @param {() => Promise<any>} request
   * @returns {Promise<boolean>}
   */
  async function run(button, label, request) {
    const before = button.textContent;
    button.disabled = true;
    button.textContent = label;
    say("");
    try {
      const updated = await request();
      if (updated) live.applyAlert(updated);
      else live.reload(); // done, but the answer carried no alert: fetch the list
      return true;
    } catch (err) {
      if (err instanceof AuthError) throw err;
      say(err.message);
      if (err.status === 409 || err.status === 404) live.reload();
      return false;
    } finally {
      button.disabled = false;
      button.textContent = before;
    }
  }

  /** @returns {number | null} */
  function itemId() {
    return item && item.id;
  }

  ack.addEventListener("click", () => {
    run(ack, t("Acknowledging…"), () => api(`/alerts/${itemId()}/ack`, { method: "POST" }))
      .catch(onAuthError);
  });
  toggle.addEventListener("click", () => {
    form.show(form.root.hidden === true);
    toggle.setAttribute("aria-expanded", String(!form.root.hidden));
    if (!form.root.hidden) form.focus();
  });
  form.onCancel = () => {
    form.show(false);
    toggle.setAttribute("aria-expanded", "false");
    toggle.focus();
  };
  form.onSubmit = async ({ outcome, note }) => {
    if (!outcome) return say(t("Choose an outcome first."));
    const ok = await run(form.submit, t("Resolving…"), () => api(`/alerts/${itemId()}/resolve`, {
      method: "POST", body: { outcome, note: note || null },
    })).catch(onAuthError);
    if (ok) form.show(false);
    return undefined;
  };

  return {
    root,
    update(next) {
      item = next;
      const saved = !next.pending && next.id !== null;
      ack.hidden = !saved || next.status !== "open";
      toggle.hidden = !saved || ackOnly;
      if (!saved) form.show(false);
      buttons.hidden = !saved;
    },
  };
}

/**
 * @typedef {object} ResolveForm
 * @property {HTMLFormElement} root
 * @property {HTMLButtonElement} submit
 * @property {(answer: {outcome: string, note: string}) => void} onSubmit
 * @property {() => void} onCancel
 * @property {(visible: boolean) => void} show
 * @property {() => void} focus
 */

let formCount = 0;

/** The outcome and note of a resolution. @returns {ResolveForm} */
function resolveForm() {
  formCount += 1;
  const ids = { outcome: `resolve-outcome-${formCount}`, note: `resolve-note-${formCount}` };
  const select = el("select", { id: ids.outcome, required: true },
    el("option", { value: "" }, t("Choose the outcome…")),
    ...resolveOutcomes().map(({ value, label }) => el("option", { value }, label)));
  const note = el("textarea", { id: ids.note, rows: 2, maxLength: 2000,
    placeholder: t("What happened? (required for Other)") });
  const submit = el("button", { type: "submit" }, t("Resolve alert"));
  const cancel = el("button", { type: "button", className: "secondary" }, t("Cancel"));
  const root = el("form", { className: "resolve-form", hidden: true, noValidate: true },
    el("label", { htmlFor: ids.outcome }, t("Outcome")), select,
    el("label", { htmlFor: ids.note }, t("Note")), note,
    el("div", { className: "action-buttons" }, submit, cancel));
  /** @type {ResolveForm} */
  const form = {
    root,
    submit,
    onSubmit: () => {},
    onCancel: () => {},
    show(visible) {
      root.hidden = !visible;
      if (!visible) {
        select.value = "";
        note.value = "";
      }
    },
    focus() { select.focus(); },
  };
  root.addEventListener("submit", (event) => {
    event.preventDefault();
    form.onSubmit({ outcome: select.value, note: note.value.trim() });
  });
  cancel.addEventListener("click", () => form.onCancel());
  return form;
}

/**
 * Who has the alert and how long is left to acknowledge it: the acknowledgement countdown
 * against its escalation deadline while it is open, and the name of the care worker it is
 * assigned to (duty screen; the server sends the names, family views have neither).
 * @param {Item} item
 * @param {number | null} myId the logged-in user's id, to say "you"
 * @returns {import("./dom.js").Child[]}
 */
export function handlingLines(item, myId) {
  const deadline = item.status === "open" && item.escalates_at;
  let who = null;
  if (item.status === "open" && item.assigned_to !== null && item.assigned_to !== undefined) {
    let line;
    if (item.assigned_to === myId) line = [t("Assigned to you")];
    else if (item.assigned_name) {
      line = fill(t("Assigned to {name}"), { name: dataSpan(item.assigned_name) });
    } else line = [t("Assigned to a colleague")];
    who = el("div", { className: "alert-meta alert-who" }, ...line);
  } else if (item.status === "open" && !item.pending) {
    who = el("div", { className: "alert-meta alert-who" }, t("Nobody has it yet"));
  }
  return [
    deadline ? el("div", { className: "alert-meta alert-deadline" }, countdownSpan(deadline))
      : null,
    who,
  ];
}

/**
 * @typedef {object} CardOptions
 * @property {ActionOptions} actions
 * @property {boolean} fresh highlight it
 * @property {string} name the resident's name
 * @property {import("./dom.js").Child[]} body the card's content
 */

/**
 * One alert card: an <li> with a body and, for staff who may act, the action buttons.
 * Created once per item key in `cards`, repainted on every update (duty screen and phone
 * page).
 * @param {Map<string, Card>} cards
 * @param {LiveAlerts} live
 * @param {string} role
 * @param {Item} item
 * @param {CardOptions} opts
 * @returns {HTMLLIElement}
 */
export function alertCard(cards, live, role, item, opts) {
  let card = cards.get(item.key);
  if (!card) {
    const actions = canAct(role) ? alertActions(live, opts.actions) : null;
    const body = el("div", { className: "alert-body" });
    card = { root: el("li", {}, body, actions && actions.root), body, actions };
    cards.set(item.key, card);
  }
  const classes = ["alert", `alert--${item.severity}`, `alert--${item.status}`];
  if (item.pending) classes.push("alert--pending");
  if (opts.fresh) classes.push("alert--fresh");
  card.root.className = classes.join(" ");
  card.root.dataset.alertId = item.id === null ? "" : String(item.id);
  const words = { severity: severityLabel(item.severity).toLowerCase(),
    type: typeLabel(item.type), name: opts.name, status: statusLabel(item.status).toLowerCase() };
  card.root.setAttribute("aria-label", item.pending
    ? t("{severity} alert: {type}, {name}, not yet saved", words)
    : t("{severity} alert: {type}, {name}, {status}", words));
  card.body.replaceChildren(.../** @type {(Node | string)[]} */ (opts.body.filter(Boolean)));
  if (card.actions) card.actions.update(item);
  return card.root;
}

/**
 * @typedef {{feature: string, direction: string, day: string, explanation: string}} RoutineChange
 * @typedef {{key: string, changes: RoutineChange[] | null}} RoutineEntry
 */
/** @type {Map<number, RoutineEntry>} what each routine-change alert carries, by alert id */
const routineCache = new Map();

/**
 * What a routine-change card says: every feature that changed while the alert was open
 * (a later one joins the open alert), each with its explanation in the page's language
 * ("Night exits 4.2 vs usual 1.1 over the last 5 days"), from the alert's detail. Fetched
 * once per alert and again when its count or last time moves (a feature joined);
 * `repaint` is called when they arrive. Null for any other alert, and until they arrive.
 * @param {Item} item
 * @param {() => void} repaint
 * @returns {HTMLUListElement | null}
 */
export function routineChanges(item, repaint) {
  if (item.type !== "routine_change" || item.id === null || item.pending) return null;
  const id = item.id;
  const key = `${item.count}|${item.last_seen}`;
  let entry = routineCache.get(id);
  if (!entry || entry.key !== key) {
    /** @type {RoutineEntry} */
    const fresh = { key, changes: entry ? entry.changes : null };
    routineCache.set(id, fresh);
    entry = fresh;
    api(`/alerts/${id}`).then((detail) => {
      if (routineCache.get(id) !== fresh) return;
      fresh.changes = /** @type {RoutineChange[]} */ (detail.routine_changes || []);
      repaint();
    }).catch(() => {
      if (routineCache.get(id) === fresh) routineCache.delete(id);
    });
  }
  if (!entry.changes || !entry.changes.length) return null;
  return el("ul", { className: "routine-changes" }, ...entry.changes.map(
    (c) => el("li", { dataset: { feature: c.feature } }, c.explanation)));
}
