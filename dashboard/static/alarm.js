// @ts-check
// The duty screen's alarm for critical alerts: a tone made with the Web Audio API (no audio
// file, nothing from a CDN), ON by default, repeating every REPEAT_MS while any critical alert
// is open (not yet acknowledged). A "Test sound" button plays it once.
//
// Browsers refuse to start audio before the page has had a click or a key press (autoplay
// rules). A wall screen that was reloaded overnight has had none, so while the audio is
// blocked a banner says "Click anywhere to enable the alarm sound"; the first click or key
// press unlocks it. Switching the sound off is remembered on this device.
//
// The page's state is on <body> for people and tests alike: data-sound = "on" | "off" |
// "blocked", data-alarm = "ringing" | "quiet", data-beeps = how many tones were played.

import { t } from "./i18n.js";

const SOUND_KEY = "eldercare.sound";
const REPEAT_MS = 5000;

/**
 * @typedef {object} Alarm
 * @property {() => void} play one tone now (a new critical alert)
 * @property {(active: boolean) => void} ring repeat the tone while `active` (a critical alert
 *   is open), stop when not
 */

/** @returns {typeof AudioContext | undefined} */
function audioClass() {
  return window.AudioContext || /** @type {any} */ (window).webkitAudioContext;
}

/**
 * Wire the sound toggle, the test button and the "click to enable" banner.
 * @param {{toggle: HTMLElement, test: HTMLElement | null, banner: HTMLElement | null}} parts
 * @returns {Alarm}
 */
export function createAlarm({ toggle, test, banner }) {
  let enabled = localStorage.getItem(SOUND_KEY) !== "off";
  /** @type {AudioContext | null} */
  let ctx = null;
  /** @type {ReturnType<typeof setInterval> | null} */
  let repeat = null;
  let beeps = 0;

  /** @returns {AudioContext | null} */
  function context() {
    const AudioCtx = audioClass();
    if (!AudioCtx) return null;
    if (!ctx) {
      ctx = new AudioCtx();
      ctx.addEventListener("statechange", render);
    }
    if (ctx.state === "suspended") ctx.resume().then(render, () => {});
    return ctx;
  }

  /** Whether the browser still holds the audio back (no user gesture yet). */
  function blocked() {
    if (!audioClass()) return false;
    if (ctx) return ctx.state !== "running";
    return !(navigator.userActivation && navigator.userActivation.hasBeenActive);
  }

  function beep() {
    beeps += 1;
    document.body.dataset.beeps = String(beeps);
    const c = context();
    if (!c) return;
    const start = c.currentTime + 0.05;
    for (let i = 0; i < 3; i += 1) {
      const t = start + i * 0.45;
      const osc = c.createOscillator();
      const gain = c.createGain();
      osc.type = "square";
      osc.frequency.value = i === 1 ? 1046 : 880;
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.25, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.35);
      osc.connect(gain).connect(c.destination);
      osc.start(t);
      osc.stop(t + 0.4);
    }
  }

  function render() {
    const isBlocked = enabled && blocked();
    toggle.textContent = enabled ? t("Sound: on") : t("Sound: off");
    toggle.setAttribute("aria-pressed", String(enabled));
    document.body.dataset.sound = !enabled ? "off" : (isBlocked ? "blocked" : "on");
    document.body.dataset.alarm = repeat !== null ? "ringing" : "quiet";
    if (banner) banner.hidden = !isBlocked;
  }

  function unlock() {
    if (enabled) context();
    render();
  }

  toggle.addEventListener("click", () => {
    enabled = !enabled;
    localStorage.setItem(SOUND_KEY, enabled ? "on" : "off");
    if (enabled) beep();
    render();
  });
  if (test) test.addEventListener("click", () => { beep(); render(); });
  document.addEventListener("pointerdown", unlock);
  document.addEventListener("keydown", unlock);
  render();
  return {
    play() { if (enabled) beep(); },
    ring(active) {
      if (active && repeat === null) {
        repeat = setInterval(() => { if (enabled) beep(); }, REPEAT_MS);
      } else if (!active && repeat !== null) {
        clearInterval(repeat);
        repeat = null;
      }
      render();
    },
  };
}
