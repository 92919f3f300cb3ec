// @ts-check
// What both pages (the duty screen, app.js, and the care worker's phone page, worker.js)
// do around their alert lists: the login form, entering and leaving the app with its live
// feed, and the feed's live / reconnecting / stale indicator.
//
// The other shared modules, each with one job (docs/dashboard.md, "Front-end modules"):
//   api.js         session in sessionStorage; authenticated JSON requests
//   time.js        ages ("3 min ago") and clock times in the site's zone, on the server's clock
//   dom.js         building elements (text only, never HTML), reconciling lists
//   vocabulary.js  the words for alert types, severities, statuses, outcomes, roles, devices
//   stream.js      the live feed client (GET /api/v1/alerts/stream), reconnecting
//   live.js        the live set of alerts the feed keeps current
//   cards.js       alert cards with Acknowledge / Resolve
//   alarm.js       the optional beep for new critical alerts

import {
  SecondFactorNeeded, api, clearSession, endSession, requestToken, saveSession,
} from "./api.js";
import { $, $button, $input, dataSpan } from "./dom.js";
import { createLiveAlerts } from "./live.js";
import { paintStrip } from "./parts.js";
import { pageClock, setPageZone } from "./time.js";
import { followLanguage, t } from "./i18n.js";
import { roleLabel } from "./vocabulary.js";

/** @typedef {import("./api.js").Session} Session */
/** @typedef {import("./live.js").FeedStatus} FeedStatus */
/** @typedef {import("./live.js").Item} Item */
/**
 * What both pages keep about the session; each page adds its own fields.
 * @typedef {object} PageState
 * @property {Session | null} session
 * @property {import("./live.js").LiveAlerts | null} live
 * @property {number} downSince since when the feed has been down (ms), or 0
 * @property {ReturnType<typeof setInterval> | null} tickTimer
 * @property {{id: number} | null} me
 * @property {Map<string, import("./cards.js").Card>} cards
 * @property {Map<number, any>} residents
 */
/**
 * A page's handlers of its live feed, and its logout(message).
 * @typedef {object} PageHandlers
 * @property {() => void} onChange
 * @property {(status: FeedStatus) => void} onStatus
 * @property {(item: Item) => void} onFresh
 * @property {(message?: string) => void} logout
 */
/**
 * A page's wording of the feed indicator.
 * @typedef {object} FeedTexts
 * @property {(status: FeedStatus, dbDown: boolean) => string} live
 * @property {(status: FeedStatus) => string} lost
 * @property {string} dbDown
 */

const STALE_MS = 10000;

// --- login ---------------------------------------------------------------------------------

/**
 * Wires the login form; calls onLoggedIn(session) after a successful login.
 * @param {(session: Session) => void} onLoggedIn
 */
export function wireLogin(onLoggedIn) {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = $input("username").value.trim();
    const password = $input("password").value;
    if (!username || !password) {
      $("login-message").textContent = t("Enter your username and password.");
      return;
    }
    const button = $button("login-button");
    const code = $input("totp");
    button.disabled = true;
    button.textContent = t("Logging in…");
    try {
      const session = await requestToken(username, password, code.value.trim());
      saveSession(session);
      // A language of their own: remember it in this browser; reload when the page is in
      // another (the session stays in this tab).
      if (followLanguage(session.language_chosen ? session.language : null)) return;
      $("login-message").textContent = "";
      showCodeField(false);
      if ((session.must_change_password || session.totp_enrolment_required)
          && location.pathname !== "/account") {
        location.assign("/account");  // only "My account" works until that is done
        return;
      }
      onLoggedIn(session);
    } catch (err) {
      $("login-message").textContent = err.message;
      if (err instanceof SecondFactorNeeded) {
        showCodeField(true);
        code.focus();
        return;
      }
      $input("password").value = "";
      code.value = "";
      $("password").focus();
    } finally {
      button.disabled = false;
      button.textContent = t("Log in");
    }
  });
}

/** Show (after a right password on an account with TOTP) or hide the code field. */
function showCodeField(/** @type {boolean} */ shown) {
  $("totp-label").hidden = !shown;
  $input("totp").hidden = !shown;
  if (!shown) $input("totp").value = "";
}

/**
 * Both pages: leave the login form for the page and start its live alert feed. The page's
 * `state` gets session, live and downSince; a rejected session calls `page.logout`.
 * @param {PageState} state
 * @param {Session} session
 * @param {PageHandlers} page
 */
export function showApp(state, session, page) {
  state.session = session;
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  showWho($("who"), session);
  showRoleLinks(session);
  followSiteZone(session);
  state.downSince = 0;
  state.live = createLiveAlerts({
    onChange: page.onChange,
    onStatus: page.onStatus,
    onAuthError: (err) => page.logout(err.message),
    onFresh: page.onFresh,
  });
  state.live.start();
}

/**
 * Both pages: stop the feed and the clock, forget what was shown, back to the login form.
 * The page clears its own lists first.
 * @param {PageState} state
 * @param {string} message
 */
export function leaveApp(state, message) {
  endSession();
  if (state.live) state.live.stop();
  if (state.tickTimer !== null) clearInterval(state.tickTimer);
  state.live = null;
  state.me = null;
  state.cards.clear();
  state.residents = new Map();
  $("critical-banner").hidden = true;
  $("stale-banner").hidden = true;
  clearSession();
  showLogin(message);
}

/** @param {string} [message] */
export function showLogin(message = "") {
  $("app-view").hidden = true;
  $("login-view").hidden = false;
  $("login-message").textContent = message;
  $input("password").value = "";
  showCodeField(false);
  $("username").focus();
}

/**
 * "Anna Andersen · Family", "Dora Duty · Duty officer · site north".
 * @param {Session} session
 * @returns {string}
 */
export function whoLine(session) {
  const role = roleLabel(session.role);
  const name = session.full_name || session.username;
  return session.site_id ? `${name} · ${role} · ${t("site {site}", { site: session.site_id })}`
    : `${name} · ${role}`;
}

/**
 * Show only the links this role may use (elements with data-roles; the API refuses the
 * others anyway), and no page links at all on a wall display (read and acknowledge only).
 * @param {Session} session
 */
export function showRoleLinks(session) {
  for (const link of document.querySelectorAll("[data-roles]")) {
    const roles = (/** @type {HTMLElement} */ (link).dataset.roles || "").split(" ");
    /** @type {HTMLElement} */ (link).hidden = session.role === "display"
      || !roles.includes(session.role);
  }
  for (const here of document.querySelectorAll(`.page-nav a[href="${location.pathname}"]`)) {
    here.setAttribute("aria-current", "page");
  }
}

/**
 * Paint whoLine into `node`, the name and site id marked as data (translate="no").
 * @param {HTMLElement} node
 * @param {Session} session
 */
export function showWho(node, session) {
  const name = dataSpan(session.full_name || session.username);
  const role = roleLabel(session.role);
  if (!session.site_id) {
    node.replaceChildren(name, ` · ${role}`);
    return;
  }
  const [before, after] = t("site {site}").split("{site}");
  node.replaceChildren(name, ` · ${role} · ${before}`, dataSpan(session.site_id),
    after || "");
}

/**
 * The page's own times (its clock, "down since") in the logged-in person's site's zone:
 * a wall display's comes with its session; site staff read their one site from GET /sites;
 * an administrator (no site of their own) sees the zone of the sites they are shown — the
 * one in the address (`?site=`), else the zone all sites share — or UTC, labelled "UTC",
 * when the sites are in different zones (docs/dashboard.md, "Times on the duty screen").
 * @param {Session} session
 */
function followSiteZone(session) {
  setPageZone(session.site_timezone || null);
  if (session.site_timezone || session.role === "family") return;
  const wanted = session.site_id || new URLSearchParams(location.search).get("site");
  api("/sites").then((/** @type {{id: string, timezone: string}[]} */ sites) => {
    const shown = wanted ? sites.filter((s) => s.id === wanted) : sites;
    const zones = new Set(shown.map((s) => s.timezone));
    setPageZone(zones.size === 1 ? [...zones][0] : null);
  }).catch(() => {});  // times stay in UTC, labelled so
}

// --- feed health: both pages show the same live / reconnecting / stale indicator ---------

/**
 * Remember since when the stream has been down (on a page's `state.downSince`) and show
 * the stream's error above the alert list.
 * @param {PageState} state
 * @param {FeedStatus} status
 */
export function noteStreamStatus(state, status) {
  if (status.stream === "down" && !state.downSince) state.downSince = Date.now();
  if (status.stream === "live") state.downSince = 0;
  $("alerts-message").textContent = status.stream === "live" ? status.error : "";
}

/**
 * Paint the feed indicator and the stale banner; `texts` gives the page's wording.
 * @param {FeedStatus} status
 * @param {number} downSince
 * @param {FeedTexts} texts
 */
export function paintFeed(status, downSince, texts) {
  const live = status.stream === "live";
  const closed = status.stream === "closed";  // for good: too many streams elsewhere
  const dbDown = live && status.database === false;
  const lost = !live && downSince && Date.now() - downSince > STALE_MS;
  const feed = $("feed-status");
  feed.classList.toggle("live", live && !dbDown);
  feed.classList.toggle("down", Boolean(dbDown || !live));
  feed.textContent = live ? texts.live(status, dbDown) : (closed ? t("Feed closed")
    : (status.stream === "down" ? t("Reconnecting…") : t("Connecting…")));
  const banner = $("stale-banner");
  banner.hidden = !(lost || dbDown || closed);
  if (closed) banner.textContent = status.error;
  else if (lost) banner.textContent = texts.lost(status);
  else if (dbDown) banner.textContent = texts.dbDown;
  paintParts(status);
}

/**
 * Each part that is not running (gateway/presence.py), as [its name, the sentence about it]:
 * "Pipeline screen" and "{part} down since 03:12". Only while the feed is live and the bus
 * is up, the only times these states are current. The part's name is the instance's own
 * (data); the time is in the page's zone.
 * @param {FeedStatus} status
 * @returns {[string, string][]}
 */
function partsDown(status) {
  if (status.stream !== "live" || status.bus === false) return [];
  const down = Object.entries(status.parts || {}).filter(([, part]) => !part.up);
  return down.map(([name, part]) => {
    const label = name.charAt(0).toUpperCase() + name.slice(1).replace(/-/g, " ");
    const stopped = part.reason === "stopped";
    if (!part.since) return [label, stopped ? t("{part} down (stopped)") : t("{part} down")];
    const time = pageClock(part.since);
    return [label, stopped ? t("{part} down since {time} (stopped)", { time })
      : t("{part} down since {time}", { time })];
  });
}

/**
 * "Pipeline down since 03:12 · Jobs down": the platform's parts that are not running.
 * @param {FeedStatus} status
 * @returns {string}
 */
export function partsDownText(status) {
  return partsDown(status).map(([label, text]) => text.replace("{part}", label)).join(" · ");
}

/** @param {FeedStatus} status */
function paintParts(status) {
  const banner = document.getElementById("parts-banner");
  if (!banner) return;
  const down = partsDown(status);
  banner.hidden = down.length === 0;
  /** @type {(Node | string)[]} */
  const nodes = [];
  down.forEach(([label, text], i) => {
    if (i) nodes.push(" · ");
    const [before, after] = text.split("{part}");
    nodes.push(before, dataSpan(label), after || "");
  });
  banner.replaceChildren(...nodes);
  paintStrip(status);  // the duty screen's always-visible strip (parts.js)
}
