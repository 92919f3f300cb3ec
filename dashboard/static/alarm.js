// @ts-check
// Optional beep for new critical alerts. Browsers only allow sound after a click or tap,
// so it is off until switched on with a button (the choice is remembered on this device).

const SOUND_KEY = "eldercare.sound";

/**
 * Wire `button` to switch the sound on and off.
 * @param {HTMLElement} button
 * @returns {{play(): void}}
 */
export function createAlarm(button) {
  let enabled = localStorage.getItem(SOUND_KEY) === "on";
  /** @type {AudioContext | null} */
  let ctx = null;

  /** @returns {AudioContext | null} */
  function context() {
    /** @type {typeof AudioContext | undefined} */
    const AudioCtx = window.AudioContext || /** @type {any} */ (window).webkitAudioContext;
    if (!AudioCtx) return null;
    if (!ctx) ctx = new AudioCtx();
    if (ctx.state === "suspended") ctx.resume().catch(() => {});
    return ctx;
  }

  function beep() {
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
    button.textContent = enabled ? "Sound: on" : "Sound: off";
    button.setAttribute("aria-pressed", String(enabled));
  }

  button.addEventListener("click", () => {
    enabled = !enabled;
    localStorage.setItem(SOUND_KEY, enabled ? "on" : "off");
    render();
    if (enabled) beep();
  });
  // Unlock audio with the first interaction after a reload (autoplay rules).
  document.addEventListener("pointerdown", () => { if (enabled) context(); }, { once: true });
  render();
  return { play() { if (enabled) beep(); } };
}
