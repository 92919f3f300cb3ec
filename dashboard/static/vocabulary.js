// @ts-check
// The platform's words for alert types, severities, statuses, outcomes, roles and devices.
// Never typed here: the server embeds them in every page (<script id="vocabulary"
// type="application/json">, built by dashboard/vocabulary.py from the one definition in
// Python, the same document as GET /api/v1/vocabulary), in the page's language.

/**
 * @typedef {object} Term
 * @property {string} value the value in the API, e.g. "fall"
 * @property {string} label what the pages call it (for fall: Fall detected)
 */
/** @typedef {Term & {family: string | null}} StateTerm a status or outcome, with family words */
/** @typedef {StateTerm & {choosable: boolean}} OutcomeTerm */
/**
 * @typedef {object} Vocabulary
 * @property {string} lang
 * @property {Term[]} alert_types
 * @property {Term[]} severities loudest first
 * @property {StateTerm[]} statuses
 * @property {OutcomeTerm[]} outcomes in the order the resolve form offers them
 * @property {Term[]} roles
 * @property {Term[]} device_types
 * @property {Term[]} audit_actions what an audit record says was done
 * @property {Term[]} audit_outcomes ok / denied / error
 * @property {Term[]} duty_overrides manual overrides of the duty roster (on, off)
 * @property {Term[]} visit_statuses
 * @property {Term[]} visit_checklist the visit checklist, in the form's order
 * @property {Term[]} risks risk categories of the resident ledger
 * @property {Term[]} living_situations
 * @property {Term[]} sexes
 * @property {Term[]} resident_statuses
 * @property {Term[]} consent_kinds
 * @property {Term[]} home_states a home's state on the wall screen, in order of precedence
 * @property {Term[]} platform_parts the parts on the duty screen's status strip
 * @property {Term[]} channel_kinds notification channels (e-mail, group robots, ...)
 * @property {Term[]} notification_kinds why a notification was sent
 * @property {Term[]} delivery_statuses how delivering a notification went
 * @property {Term[]} daily_features a resident's daily person features (alerts/learning/
 *   features.py: the daily routine chart, routine change, the digest)
 * @property {Term[]} device_features the daily features of the sensor's health (shown apart)
 */

/** @returns {Vocabulary} */
function embedded() {
  const block = document.getElementById("vocabulary");
  if (!block || !block.textContent) throw new Error("The page carries no vocabulary");
  return JSON.parse(block.textContent);
}

export const vocabulary = embedded();

/**
 * @param {Term[]} terms
 * @returns {Map<string, string>}
 */
function labels(terms) {
  return new Map(terms.map((t) => [t.value, t.label]));
}

const TYPES = labels(vocabulary.alert_types);
const SEVERITIES = labels(vocabulary.severities);
const STATUSES = labels(vocabulary.statuses);
const ROLES = labels(vocabulary.roles);
const DEVICES = labels(vocabulary.device_types);
const AUDIT_ACTIONS = labels(vocabulary.audit_actions || []);
const AUDIT_OUTCOMES = labels(vocabulary.audit_outcomes || []);
const OVERRIDES = labels(vocabulary.duty_overrides || []);
const SEVERITY_RANK = new Map(vocabulary.severities.map((s, i) => [s.value, i]));

/**
 * An alert type's label; an unknown type (a newer server) in readable words.
 * @param {string} type
 * @returns {string}
 */
export function typeLabel(type) {
  const label = TYPES.get(type);
  if (label) return label;
  const words = String(type).replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** @param {string} severity @returns {string} */
export function severityLabel(severity) {
  return SEVERITIES.get(severity) || severity;
}

/** 0 for the loudest severity; unknown ones last. @param {string} severity @returns {number} */
export function severityRank(severity) {
  return SEVERITY_RANK.get(severity) ?? 9;
}

/** @param {string} status @returns {string} */
export function statusLabel(status) {
  return STATUSES.get(status) || status;
}

/** @param {string} role @returns {string} */
export function roleLabel(role) {
  return ROLES.get(role) || role;
}

/** @param {string} type @returns {string} */
export function deviceLabel(type) {
  return DEVICES.get(type) || type;
}

/** The outcomes a care worker may choose when resolving, in order. @returns {OutcomeTerm[]} */
export function resolveOutcomes() {
  return vocabulary.outcomes.filter((o) => o.choosable);
}

/** @param {string} action @returns {string} */
export function auditActionLabel(action) {
  return AUDIT_ACTIONS.get(action) || action;
}

/** @param {string} outcome @returns {string} */
export function auditOutcomeLabel(outcome) {
  return AUDIT_OUTCOMES.get(outcome) || outcome;
}

/** A duty override's label ("" when the roster decides). @param {string | null} value */
export function dutyOverrideLabel(value) {
  return value ? OVERRIDES.get(value) || value : "";
}

const VISIT_STATUSES = labels(vocabulary.visit_statuses);

/** @param {string} status a visit's status @returns {string} */
export function visitStatusLabel(status) {
  return VISIT_STATUSES.get(status) || status;
}

/** The visit checklist items, in order. @returns {Term[]} */
export function visitChecklist() {
  return vocabulary.visit_checklist;
}

/** A home's states on the wall screen's tiles, in order of precedence. @returns {Term[]} */
export function homeStates() {
  return vocabulary.home_states || [];
}

/** The risk categories of the resident ledger. @returns {Term[]} */
export function riskTerms() {
  return vocabulary.risks || [];
}

/** The parts of the platform on the status strip, in order. @returns {Term[]} */
export function platformParts() {
  return vocabulary.platform_parts || [];
}

const CHANNELS = labels(vocabulary.channel_kinds || []);
const NOTIFICATION_KINDS = labels(vocabulary.notification_kinds || []);
const DELIVERY = labels(vocabulary.delivery_statuses || []);

/** A notification channel's name. @param {string} kind @returns {string} */
export function channelLabel(kind) {
  return CHANNELS.get(kind) || kind;
}

/** Why a notification was sent. @param {string} kind @returns {string} */
export function notificationKindLabel(kind) {
  return NOTIFICATION_KINDS.get(kind) || kind;
}

/** How delivering a notification went. @param {string} status @returns {string} */
export function deliveryLabel(status) {
  return DELIVERY.get(status) || status;
}

const DAILY_FEATURES = labels([...(vocabulary.daily_features || []),
  ...(vocabulary.device_features || [])]);

/** A daily feature's label, person or device (the daily routine chart). @param {string} key @returns {string} */
export function dailyFeatureLabel(key) {
  return DAILY_FEATURES.get(key) || key;
}
