// @ts-check
// Visits (巡访关爱) on the care worker's phone page (worker.js): "My visits" (planned or under
// way, assigned to me, soonest due first), each with Arrived / the checklist, findings and
// follow-up / Left; "Overdue at my site" (residents whose visit by the plan is late) with
// "I'll go"; and on an alert card, the go-and-check visit made from it (or a button to make
// one). The words of the form are in worker.html (<template id="visit-form">); checklist
// items and visit states come from the vocabulary. Each visit can call the resident or their
// contacts and open the address in maps (reach.js); times are the site's (siteTime).

import { api, ApiError, AuthError } from "./api.js";
import { $, el, reconcile } from "./dom.js";
import { clearFieldErrors, fieldErrorsOf, showFieldErrors } from "./form_errors.js";
import { t } from "./i18n.js";
import { phrase } from "./phrase.js";
import { pruneReach, reachNode } from "./reach.js";
import { siteTime } from "./time.js";
import { visitChecklist, visitStatusLabel } from "./vocabulary.js";

/**
 * A visit as GET /api/v1/visits returns it.
 * @typedef {object} Visit
 * @property {number} id
 * @property {number} resident_id
 * @property {string} resident_name
 * @property {number | null} alert_id
 * @property {string} status
 * @property {string} due_on
 * @property {boolean} overdue
 * @property {number | null} assigned_to
 * @property {string | null} assigned_name
 * @property {string | null} arrived_at
 * @property {string} findings
 * @property {Record<string, boolean>} checklist
 * @property {boolean} follow_up
 * @property {string | null} follow_up_note
 */
/**
 * A resident due a visit, as GET /api/v1/visits/due returns it.
 * @typedef {object} Due
 * @property {number} resident_id
 * @property {string} resident_name
 * @property {string | null} address
 * @property {string} due_on
 * @property {number} days_overdue
 * @property {number | null} open_visit_id
 * @property {string | null} open_visit_assignee
 */
/**
 * One visit card on the page; its form keeps what the worker typed across refreshes.
 * @typedef {object} VisitCard
 * @property {HTMLLIElement} root
 * @property {(visit: Visit) => void} update
 */
/**
 * @typedef {object} VisitHooks
 * @property {() => void} onChange  the alert cards show visits: re-render them
 * @property {(message: string) => void} onAuthError
 * @property {() => number | null} myId
 * @property {() => string} zone the IANA zone of the worker's site, for times
 */

const REFRESH_MS = 10000;

const state = {
  /** @type {VisitHooks | null} */ hooks: null,
  /** @type {ReturnType<typeof setInterval> | null} */ timer: null,
  /** @type {Map<number, VisitCard>} */ cards: new Map(),
  /** @type {Map<number, Visit>} */ byAlert: new Map(),
};

/**
 * A list's count on the phone page, in its heading and in the bottom bar.
 * @param {string} name
 * @param {number} count
 */
export function showCount(name, count) {
  $(`${name}-count`).textContent = String(count);
  $(`bar-${name}-count`).textContent = String(count);
}

/** Start showing visits (after login). @param {VisitHooks} hooks */
export function startVisits(hooks) {
  state.hooks = hooks;
  refreshVisits();
  state.timer = setInterval(refreshVisits, REFRESH_MS);
}

/** Stop and forget everything (logout). */
export function stopVisits() {
  if (state.timer !== null) clearInterval(state.timer);
  state.timer = null;
  state.hooks = null;
  state.cards.clear();
  state.byAlert.clear();
  $("visits-list").replaceChildren();
  $("due-list").replaceChildren();
}

/** @param {unknown} err */
function failed(err) {
  if (err instanceof AuthError) {
    state.hooks?.onAuthError(err.message);
    return;
  }
  $("visits-message").textContent = t("Could not load visits: {reason}",
    { reason: /** @type {Error} */ (err).message });
}

/** Reload my visits, the overdue residents and the visits made from alerts. */
export async function refreshVisits() {
  const hooks = state.hooks;
  if (!hooks) return;
  const me = hooks.myId();
  try {
    /** @type {[Visit[], Due[]]} */
    const [open, due] = await Promise.all([
      api("/visits?open=true&limit=500"), api("/visits/due?overdue=true")]);
    if (state.hooks !== hooks) return;
    $("visits-message").textContent = "";
    state.byAlert = new Map(open.filter((v) => v.alert_id !== null)
      .map((v) => [/** @type {number} */ (v.alert_id), v]));
    renderMine(open.filter((v) => me !== null && v.assigned_to === me));
    renderDue(due);
    hooks.onChange();
  } catch (err) {
    failed(err);
  }
}

// --- my visits ------------------------------------------------------------------------------

/** @param {Visit[]} visits */
function renderMine(visits) {
  const ids = new Set(visits.map((v) => v.id));
  for (const id of state.cards.keys()) if (!ids.has(id)) state.cards.delete(id);
  pruneReach("visit:", new Set(visits.map((v) => `visit:${v.id}`)));
  reconcile($("visits-list"), visits.map((visit) => {
    let card = state.cards.get(visit.id);
    if (!card) {
      card = visitCard(visit);
      state.cards.set(visit.id, card);
    }
    card.update(visit);
    return card.root;
  }));
  showCount("visits", visits.length);
  $("visits-empty").hidden = visits.length > 0;
}

/**
 * The form's parts, cloned from worker.html's <template id="visit-form">.
 * @returns {{form: HTMLFormElement, q: (name: string) => HTMLElement}}
 */
function formFromTemplate() {
  const template = /** @type {HTMLTemplateElement} */ ($("visit-form"));
  const form = /** @type {HTMLFormElement} */ (
    /** @type {Element} */ (template.content.firstElementChild).cloneNode(true));
  /** @param {string} name */
  const q = (name) => {
    const node = form.querySelector(`[data-part="${name}"]`);
    if (!(node instanceof HTMLElement)) throw new Error(`visit form without ${name}`);
    return node;
  };
  return { form, q };
}

/**
 * @param {Visit} first
 * @returns {VisitCard}
 */
function visitCard(first) {
  const id = first.id;
  const title = el("h3", { className: "visit-name", translate: false });
  const meta = el("p", { className: "alert-meta" });
  const badge = el("p", { className: "badge" });
  const { form, q } = formFromTemplate();
  const checks = q("checklist");
  /** @type {Map<string, HTMLInputElement>} */
  const boxes = new Map();
  for (const item of visitChecklist()) {
    const box = el("input", { type: "checkbox", name: item.value });
    boxes.set(item.value, box);
    checks.append(el("label", { className: "visit-check" }, box, ` ${item.label}`));
  }
  const findings = /** @type {HTMLTextAreaElement} */ (q("findings"));
  const followUp = /** @type {HTMLInputElement} */ (q("follow-up"));
  const note = /** @type {HTMLTextAreaElement} */ (q("follow-up-note"));
  const arrive = /** @type {HTMLButtonElement} */ (q("arrive"));
  const save = /** @type {HTMLButtonElement} */ (q("save"));
  const leave = /** @type {HTMLButtonElement} */ (q("leave"));
  const message = q("message");
  const record = q("record");
  const reach = el("div", { className: "visit-reach" });
  const root = el("li", { className: "alert visit", id: `visit-${id}`, dataset: { visitId: String(id) } },
    el("div", { className: "alert-body" }, title, meta, badge, reach), form);
  let filled = false;

  const body = () => ({
    checklist: Object.fromEntries([...boxes].map(([k, box]) => [k, box.checked])),
    findings: findings.value, follow_up: followUp.checked,
    follow_up_note: followUp.checked ? note.value : null,
  });
  /** @param {HTMLButtonElement} button @param {Record<string, unknown>} patch */
  const send = async (button, patch) => {
    button.disabled = true;
    message.textContent = "";
    clearFieldErrors(form);
    try {
      const visit = await api(`/visits/${id}`, { method: "PATCH", body: patch });
      update(visit);
      message.textContent = patch.action === "leave" ? "" : (button.dataset.done || "");
      await refreshVisits();  // the alert card of a go-and-check visit shows its state
    } catch (err) {
      if (err instanceof AuthError) return state.hooks?.onAuthError(err.message);
      const errors = err instanceof ApiError ? fieldErrorsOf(err.body) : [];
      message.textContent = errors.length ? showFieldErrors(form, errors).join("; ")
        : /** @type {Error} */ (err).message;
    } finally {
      button.disabled = false;
    }
    return undefined;
  };
  arrive.addEventListener("click", () => send(arrive, { action: "arrive" }));
  save.addEventListener("click", () => send(save, body()));
  leave.addEventListener("click", () => send(leave, { ...body(), action: "leave" }));
  followUp.addEventListener("change", () => { note.hidden = !followUp.checked; });
  form.addEventListener("submit", (event) => event.preventDefault());

  /** @param {Visit} visit */
  function update(visit) {
    title.textContent = visit.resident_name;
    const zone = state.hooks ? state.hooks.zone() : "UTC";
    meta.textContent = [t("Due {date}", { date: visit.due_on }),
      visit.alert_id ? t("from alert #{id}", { id: visit.alert_id }) : "",
      visit.arrived_at ? t("arrived {time}", { time: siteTime(visit.arrived_at, zone) }) : "",
    ].filter(Boolean).join(" · ");
    reach.replaceChildren(reachNode(`visit:${visit.id}`, visit.resident_id));
    badge.textContent = visit.overdue
      ? t("{status} · overdue", { status: visitStatusLabel(visit.status) })
      : visitStatusLabel(visit.status);
    badge.className = visit.overdue ? "badge badge--pending" : "badge badge--ack";
    const onSite = visit.status === "in_progress";
    arrive.hidden = visit.status !== "planned";
    record.hidden = !onSite;
    root.classList.toggle("visit--on-site", onSite);
    if (onSite && !filled) {  // fill once: never overwrite what is being typed
      filled = true;
      for (const [k, box] of boxes) box.checked = visit.checklist[k] === true;
      findings.value = visit.findings;
      followUp.checked = visit.follow_up;
      note.value = visit.follow_up_note || "";
      note.hidden = !visit.follow_up;
    }
  }
  return { root, update };
}

// --- overdue at my site ---------------------------------------------------------------------

/** @param {Due[]} due */
function renderDue(due) {
  pruneReach("due:", new Set(due.map((d) => `due:${d.resident_id}`)));
  $("due-list").replaceChildren(...due.map((d) => {
    const take = el("button", { type: "button", className: "big secondary" }, $("visit-take").textContent);
    const message = el("p", { className: "action-message", role: "alert" });
    take.addEventListener("click", async () => {
      take.disabled = true;
      try {
        await api("/visits", { method: "POST", body: { resident_id: d.resident_id } });
        await refreshVisits();
      } catch (err) {
        if (err instanceof AuthError) return state.hooks?.onAuthError(err.message);
        message.textContent = /** @type {Error} */ (err).message;
        take.disabled = false;
      }
      return undefined;
    });
    const late = d.days_overdue === 1 ? t("Due {date} · 1 day overdue", { date: d.due_on })
      : t("Due {date} · {days} days overdue", { date: d.due_on, days: d.days_overdue });
    return el("li", { className: "alert visit-due", dataset: { residentId: String(d.resident_id) } },
      el("div", { className: "alert-body" },
        el("h3", { className: "visit-name", translate: false }, d.resident_name),
        d.address && el("p", { className: "alert-meta", translate: false }, d.address),
        el("p", { className: "alert-meta" }, late),
        d.open_visit_id !== null
          ? el("p", { className: "alert-meta" }, ...(d.open_visit_assignee
            ? phrase(t("{name} is going"), { name: d.open_visit_assignee })
            : [t("Planned, nobody assigned yet")]))
          : null,
        reachNode(`due:${d.resident_id}`, d.resident_id)),
      d.open_visit_id === null ? el("div", { className: "action-buttons" }, take) : null,
      message);
  }));
  showCount("due", due.length);
  $("due-empty").hidden = due.length > 0;
}

// --- on alert cards -------------------------------------------------------------------------

/**
 * What an alert card shows about visits: the go-and-check visit made from it, or a button
 * making one (staff only; the page is only staff's).
 * @param {number | null} alertId null while the alert is not yet saved
 * @returns {HTMLElement | null}
 */
export function alertVisitNode(alertId) {
  if (alertId === null || !state.hooks) return null;
  const visit = state.byAlert.get(alertId);
  if (visit) {
    const status = visitStatusLabel(visit.status).toLowerCase();
    const text = visit.assigned_to === state.hooks.myId()
      ? [t("Go-and-check visit: {status}, assigned to you", { status })]
      : visit.assigned_name
        ? phrase(t("Go-and-check visit: {status}, assigned to {name}", { status }),
          { name: visit.assigned_name })
        : [t("Go-and-check visit: {status}, assigned to nobody yet", { status })];
    return el("p", { className: "alert-meta alert-visit" }, ...text);
  }
  const button = el("button", { type: "button", className: "secondary alert-visit-button" },
    $("visit-check").textContent);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api(`/alerts/${alertId}/visit`, { method: "POST", body: {} });
      await refreshVisits();
    } catch (err) {
      if (err instanceof AuthError) return state.hooks?.onAuthError(err.message);
      button.textContent = /** @type {Error} */ (err).message;
    }
    return undefined;
  });
  return button;
}
