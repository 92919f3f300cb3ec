// @ts-check
// Vitals charts with Apache ECharts (issue 14): the resident page's heart rate, respiration,
// movement and bed occupancy over 24 h / 7 days / 30 days with the resident's alerts marked
// and their usual range shaded, and the family view's 7-night summary.
//
// ECharts is served by the app from the npm package installed by scripts/bootstrap.sh
// (dashboard/charts_ui.py) and imported here on first use, so a page without charts never
// loads it; when the file is missing the chart says so instead of breaking the page.
// Times are the SITE's wall clock, 24-hour: every instant is moved to the site's wall-clock
// time and the chart runs in UTC (`useUTC`), so the axis ticks fall on the site's hours and
// midnights whatever the browser's zone is. The tooltip is drawn on the canvas
// (`renderMode: "richText"`): no HTML with inline styles under the pages' CSP.
// The words (series names, messages) are the module's own, in the page's language (t()).

import { api } from "./api.js";
import { lang, t } from "./i18n.js";
import { now } from "./time.js";
import { dailyFeatureLabel, typeLabel, vocabulary } from "./vocabulary.js";

/** @typedef {typeof import("echarts")} ECharts */
/** @typedef {import("echarts").ECharts} Chart */
/** @typedef {import("echarts").EChartsOption} Option */
/** @typedef {(key: string) => string} Words */
/**
 * @typedef {object} VitalsPoint
 * @property {string} t
 * @property {number | null} heart_rate
 * @property {number | null} respiration_rate
 * @property {number | null} movement
 * @property {number | null} occupied_fraction
 */
/** @typedef {{id: number, type: string, severity: string, opened_at: string}} ChartAlert */
/** @typedef {{day: string, time_in_bed_s: number | null, night_exits: number | null, resting_hr?: number | null}} Night */

export const ECHARTS_URL = "/vendor/echarts/echarts.esm.min.mjs";

/** The ranges the resident page offers, with the bucket width asked of the vitals API. */
export const RANGES = /** @type {const} */ ({
  "24h": { hours: 24, bucket: "5m" },
  "7d": { hours: 7 * 24, bucket: "1h" },
  "30d": { hours: 30 * 24, bucket: "6h" },
});
/** @typedef {keyof typeof RANGES} RangeKey */

const SEVERITY_COLOURS = /** @type {Record<string, string>} */ ({
  critical: "#ff5c5c", warning: "#ffb020", info: "#6cb6ff" });
const BAND_COLOUR = "rgba(108, 182, 255, 0.16)";
const GRID_LINE = { lineStyle: { color: "rgba(160, 170, 180, 0.25)" } };
// One colour per panel, readable on the dark pages.
const PANEL_COLOURS = ["#ff7a7a", "#6cb6ff", "#c3e88d", "#ffb020"];
const MIN_BAND_POINTS = 12;
const MAD_TO_SIGMA = 1.4826;

// --- loading ECharts ---------------------------------------------------------------------

/** @type {Promise<ECharts | null> | null} */
let loading = null;

/**
 * The ECharts module, or null when the server does not have it (bootstrap not run).
 * @returns {Promise<ECharts | null>}
 */
export function loadECharts() {
  if (!loading) {
    loading = import(ECHARTS_URL).then((module) => /** @type {ECharts} */ (module), (err) => {
      console.warn("charts unavailable:", err);
      return null;
    });
  }
  return loading;
}

/**
 * The chart drawn in `box` (made on first use, resized with its box).
 * @param {ECharts} echarts
 * @param {HTMLElement} box
 * @returns {Chart}
 */
function chartIn(echarts, box) {
  const existing = echarts.getInstanceByDom(box);
  if (existing) return existing;
  const chart = echarts.init(box, null, { renderer: "canvas" });
  new ResizeObserver(() => chart.resize()).observe(box);
  return chart;
}

// --- the site's clock --------------------------------------------------------------------

/**
 * A function moving an instant (ms since the epoch) to the same wall-clock time in UTC, e.g.
 * 00:05Z in Asia/Shanghai -> 08:05Z: the chart then shows the site's hours and dates.
 * @param {string} zone IANA zone of the site
 * @returns {(ms: number) => number}
 */
export function wallClock(zone) {
  const format = new Intl.DateTimeFormat("en-US", { timeZone: zone, hourCycle: "h23",
    year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric",
    second: "numeric" });
  return (ms) => {
    /** @type {Record<string, number>} */
    const p = {};
    for (const part of format.formatToParts(ms)) p[part.type] = Number(part.value);
    return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  };
}

/**
 * "2026-03-10 08:05" of a wall-clock time (from `wallClock`).
 * @param {number} wall
 * @returns {string}
 */
export function isoMinute(wall) {
  return new Date(wall).toISOString().slice(0, 16).replace("T", " ");
}

/**
 * An axis label: "03-10" at midnight, else "08:05" (24-hour).
 * @param {number} wall
 * @returns {string}
 */
export function axisLabel(wall) {
  const text = isoMinute(wall);
  return text.endsWith(" 00:00") ? text.slice(5, 10) : text.slice(11);
}

// --- the usual range ---------------------------------------------------------------------

/** @param {number[]} sorted @returns {number} */
function medianOf(sorted) {
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * The usual range of the shown values: median ± 2 robust standard deviations (1.4826 × the
 * median absolute deviation, at least 5 % of the median), so that a few bad hours do not
 * widen it; null with fewer than 12 values. (No learned per-resident baseline exists yet: issue 15.)
 * @param {(number | null)[]} values
 * @returns {{low: number, high: number} | null}
 */
export function usualBand(values) {
  const known = values.filter((v) => v !== null && Number.isFinite(v))
    .map(Number).sort((a, b) => a - b);
  if (known.length < MIN_BAND_POINTS) return null;
  const median = medianOf(known);
  const deviations = known.map((v) => Math.abs(v - median)).sort((a, b) => a - b);
  // at least ±5 % of the median, so that steady values still show a visible band
  const spread = Math.max(2 * MAD_TO_SIGMA * medianOf(deviations), 0.05 * Math.abs(median));
  return { low: median - spread, high: median + spread };
}

// --- the resident page -------------------------------------------------------------------

/**
 * [wall time, value] pairs, with a null wherever a bucket is missing so the line breaks.
 * @param {VitalsPoint[]} points
 * @param {(p: VitalsPoint) => number | null} pick
 * @param {(ms: number) => number} wall
 * @param {number} bucketMs
 * @returns {[number, number | null][]}
 */
function seriesData(points, pick, wall, bucketMs) {
  /** @type {[number, number | null][]} */
  const data = [];
  let last = -Infinity;
  for (const point of points) {
    const at = Date.parse(point.t);
    if (data.length && at - last > bucketMs) data.push([wall(last + bucketMs), null]);
    data.push([wall(at), pick(point)]);
    last = at;
  }
  return data;
}

/**
 * The options of the four stacked panels (one grid each, one time axis shared).
 * @param {{points: VitalsPoint[], bucket_seconds: number}} vitals
 * @param {ChartAlert[]} alerts
 * @param {{from: number, to: number, zone: string, words: Words, text: string}} view
 * @returns {Option}
 */
export function residentOption(vitals, alerts, view) {
  const wall = wallClock(view.zone);
  const bucketMs = vitals.bucket_seconds * 1000;
  const panels = [
    { key: "heart-rate", pick: (/** @type {VitalsPoint} */ p) => p.heart_rate, band: true },
    { key: "respiration", pick: (/** @type {VitalsPoint} */ p) => p.respiration_rate, band: true },
    // no band: movement mixes in-bed and out-of-bed buckets, its median says little
    { key: "movement", pick: (/** @type {VitalsPoint} */ p) => p.movement, band: false },
    { key: "in-bed", pick: (/** @type {VitalsPoint} */ p) => p.occupied_fraction === null
      ? null : Math.round(p.occupied_fraction * 100), band: false },
  ];
  const marks = alerts.map((a) => {
    const at = wall(Date.parse(a.opened_at));
    return { xAxis: at, name: `${typeLabel(a.type)} ${isoMinute(at).slice(11)}`,
      lineStyle: { color: SEVERITY_COLOURS[a.severity] || SEVERITY_COLOURS.info } };
  });
  const height = 100 / panels.length;
  const axisText = { color: view.text };
  return {
    useUTC: true,
    animation: false,
    textStyle: { color: view.text },
    tooltip: { trigger: "axis", renderMode: "richText", formatter: tooltipText(panels) },
    axisPointer: { link: [{ xAxisIndex: "all" }] },
    grid: panels.map((_, i) => ({ left: 56, right: 16, top: `${i * height + 5}%`,
      height: `${height - 10}%` })),
    xAxis: panels.map((_, i) => ({ type: "time", gridIndex: i, min: wall(view.from),
      max: wall(view.to), axisLabel: { ...axisText, show: i === panels.length - 1,
        formatter: axisLabel, hideOverlap: true } })),
    yAxis: panels.map((panel, i) => ({ type: "value", gridIndex: i, scale: panel.band,
      name: view.words(panel.key), nameTextStyle: { ...axisText, align: "left" },
      axisLabel: axisText, splitNumber: 3, splitLine: GRID_LINE,
      ...(panel.key === "in-bed" ? { min: 0, max: 100, interval: 50 } : {}) })),
    series: panels.map((panel, i) => {
      const data = seriesData(vitals.points, panel.pick, wall, bucketMs);
      const band = panel.band ? usualBand(data.map(([, v]) => v)) : null;
      return {
        type: "line", name: view.words(panel.key), xAxisIndex: i, yAxisIndex: i,
        showSymbol: false, connectNulls: false, data, color: PANEL_COLOURS[i],
        ...(panel.key === "in-bed" ? { step: "end", areaStyle: { opacity: 0.35 } } : {}),
        markArea: band ? { silent: true, itemStyle: { color: BAND_COLOUR },
          data: [[{ yAxis: band.low, name: view.words("usual") }, { yAxis: band.high }]],
          label: { color: view.text, position: "insideTopRight" } } : undefined,
        markLine: marks.length ? { silent: true, symbol: "none", data: marks,
          label: { show: i === 0, formatter: "{b}", color: view.text,
            position: "insideEndTop" } } : undefined,
      };
    }),
  };
}

/**
 * The tooltip in plain text: the site's time, then each value.
 * @param {{key: string}[]} panels
 * @returns {(params: any) => string}
 */
function tooltipText(panels) {
  return (params) => {
    const rows = (Array.isArray(params) ? [...params] : [params])
      .sort((a, b) => a.seriesIndex - b.seriesIndex);  // the panels' order, top to bottom
    if (!rows.length) return "";
    const lines = [isoMinute(rows[0].value[0])];
    for (const row of rows) {
      const value = row.value[1];
      const key = panels[row.seriesIndex]?.key || "";
      const unit = key === "in-bed" ? " %" : "";
      lines.push(t("{series}: {value}", { series: row.seriesName,
        value: value === null ? "–" : `${Math.round(value * 10) / 10}${unit}` }));
    }
    return lines.join("\n");
  };
}

/** What the resident page's chart section shows now. */
const resident = { id: 0, site: "", range: /** @type {RangeKey} */ ("24h"), load: 0 };

/**
 * The charts' words, in the page's language: series and axis names, the usual range's
 * label, and the messages in place of a chart.
 * @type {Words}
 */
export function chartWord(key) {
  switch (key) {
    case "heart-rate": return t("Heart rate /min");
    case "respiration": return t("Breathing /min");
    case "movement": return t("Movement");
    case "in-bed": return t("In bed %");
    case "usual": return t("usual");
    case "usual-default": return t("usual (population default)");
    case "no-data": return t("No readings in this range.");
    case "unavailable": case "chart-unavailable":
      return t("Charts unavailable (run scripts/bootstrap.sh).");
    case "chart-in-bed": return t("Hours in bed");
    case "chart-up": return t("Times up at night");
    case "chart-hr": return dailyFeatureLabel("resting_hr");  // the vocabulary's label
    default: return key;
  }
}

/**
 * The end of the shown range: the page's `?to=` (a fixed, reproducible view), else now.
 * @returns {number}
 */
function rangeEnd() {
  // an unescaped "+01:00" arrives as " 01:00" (a "+" in a query is a space)
  const given = (new URLSearchParams(window.location.search).get("to") || "").replace(" ", "+");
  const to = Date.parse(given);
  return Number.isNaN(to) ? now() : to;
}

/**
 * Show the vitals charts of a resident (the ledger entry): #vitals-charts in ledger.html.
 * @param {{id: number, site_id: string} | null} who null hides the section
 */
export function showResidentCharts(who) {
  const section = document.getElementById("vitals-charts");
  if (!section) return;
  section.hidden = who === null;
  if (!who) return;
  resident.id = who.id;
  resident.site = who.site_id;
  if (!section.dataset.wired) {
    section.dataset.wired = "1";
    for (const button of section.querySelectorAll("button[data-range]")) {
      button.addEventListener("click", () => {
        resident.range = /** @type {RangeKey} */ (/** @type {HTMLElement} */ (button).dataset.range);
        drawResident(section);
      });
    }
  }
  drawResident(section);
}

/** @param {HTMLElement} section */
async function drawResident(section) {
  const box = /** @type {HTMLElement} */ (section.querySelector(".vitals-chart"));
  const message = /** @type {HTMLElement} */ (section.querySelector(".chart-message"));
  const load = ++resident.load;  // a later click wins over an answer still on its way
  box.dataset.state = "loading";
  for (const button of section.querySelectorAll("button[data-range]")) {
    button.setAttribute("aria-pressed",
      String(/** @type {HTMLElement} */ (button).dataset.range === resident.range));
  }
  const range = RANGES[resident.range];
  const to = rangeEnd();
  const from = to - range.hours * 3600 * 1000;
  try {
    const query = new URLSearchParams({ from: new Date(from).toISOString(),
      to: new Date(to).toISOString(), bucket: range.bucket });
    const alertQuery = new URLSearchParams({ resident: String(resident.id),
      since: new Date(from).toISOString(), until: new Date(to).toISOString(), limit: "500" });
    const [echarts, vitals, alerts, sites] = await Promise.all([loadECharts(),
      api(`/residents/${resident.id}/vitals?${query}`), api(`/alerts?${alertQuery}`),
      api("/sites")]);
    if (load !== resident.load) return;
    if (!echarts) {
      unavailable(box, message, chartWord("unavailable"));
      return;
    }
    const site = sites.find((/** @type {{id: string}} */ s) => s.id === resident.site);
    const zone = site ? site.timezone : "UTC";
    message.textContent = vitals.points.length ? "" : chartWord("no-data");
    const option = residentOption(vitals, alerts, { from, to, zone, words: chartWord,
      text: getComputedStyle(box).color });
    chartIn(echarts, box).setOption(option, { notMerge: true });
    box.dataset.state = "ready";
    box.dataset.zone = zone;
  } catch (err) {
    if (load !== resident.load) return;
    box.dataset.state = "error";
    message.textContent = err instanceof Error ? err.message : String(err);
  }
}

/**
 * @param {HTMLElement} box
 * @param {HTMLElement} message
 * @param {string} text
 */
function unavailable(box, message, text) {
  box.dataset.state = "unavailable";
  box.hidden = true;
  message.textContent = text;
}

// --- the resident page: the daily routine ------------------------------------------------

/**
 * @typedef {object} DailyBand the baseline routine change judges the day against
 * @property {number} low
 * @property {number} median
 * @property {number} high
 * @property {boolean} personal false: the population default (under 14 days of data)
 * @property {string} low_text
 * @property {string} high_text
 */
/**
 * @typedef {object} DailyPoint
 * @property {string} day
 * @property {boolean} covered
 * @property {boolean} alerted
 * @property {Record<string, number | null>} values
 * @property {Record<string, string | null>} texts
 * @property {Record<string, DailyBand | null>} usual
 */
/** @typedef {{scale: number, offset: number, template: string | null}} DailyAxis */
/** @typedef {{key: string, unit: string, kind: string, direction: string, axis: DailyAxis}} DailyFeature */
/** @typedef {{feature: string, direction: string, day: string, explanation: string}} RoutineChange */
/** @typedef {{alert_id: number, feature: string, day: string, active: boolean, changes?: RoutineChange[]}} RoutineFocus */
/** @typedef {{features: DailyFeature[], points: DailyPoint[], routine_change: RoutineFocus | null}} Daily */

/**
 * A feature's raw value as the axis shows it, by the server's axis of the feature: a clock
 * time (HH:MM of offset + value minutes) when there is no template, else value / scale in
 * the template ("{value} h"), one decimal.
 * @param {DailyAxis} axis
 * @param {number} value
 * @returns {string}
 */
export function dailyValue(axis, value) {
  if (axis.template === null) {
    const minutes = ((Math.round(value + axis.offset) % 1440) + 1440) % 1440;
    return `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
  }
  return axis.template.replace("{value}", String(Math.round((value / axis.scale) * 10) / 10));
}

/**
 * The options of the daily routine chart: one feature per day (a person feature of a day
 * with too little data left out) over its usual band - the personal baseline routine change
 * judges that day against, or, before 14 days count, the population default, shaded
 * lighter (two stacked areas) - and, when the feature is that of the routine-change alert
 * the page was opened on, the alert's day marked.
 * @param {Daily} daily
 * @param {string} key the feature shown
 * @param {{words: Words, text: string}} view
 * @returns {Option}
 */
export function dailyOption(daily, key, view) {
  const feature = daily.features.find((f) => f.key === key)
    || { key, unit: "", kind: "person", direction: "up", axis: { scale: 1, offset: 0, template: "{value}" } };
  const days = daily.points.map((p) => p.day.slice(5));
  const values = daily.points.map((p) => p.values[key] ?? null);
  const bands = daily.points.map((p) => (p.usual[key] || null));
  const own = bands.map((b) => (b && b.personal ? b : null));
  const fallback = bands.map((b) => (b && !b.personal ? b : null));
  const label = dailyFeatureLabel(key);
  const axisText = { color: view.text };
  const format = (/** @type {number} */ v) => dailyValue(feature.axis, v);
  const day = alertDay(daily.routine_change, key);
  const marked = day && daily.points.some((p) => p.day === day) ? day : null;
  /**
   * The stacked area of a band: its low end (invisible), then its width (shaded); stacked
   * whatever the signs (a count's low end may lie below zero).
   * @param {(DailyBand | null)[]} list @param {string} stack @param {string} name @param {number} alpha
   * @returns {import("echarts").LineSeriesOption[]}
   */
  const band = (list, stack, name, alpha) => [
    { type: /** @type {const} */ ("line"), name: `${stack}-low`, stack,
      stackStrategy: /** @type {const} */ ("all"), silent: true, symbol: "none",
      lineStyle: { opacity: 0 }, data: list.map((b) => (b ? b.low : null)),
      tooltip: { show: false } },
    { type: /** @type {const} */ ("line"), name, stack, stackStrategy: /** @type {const} */ ("all"),
      silent: true, symbol: "none", lineStyle: { opacity: 0 },
      areaStyle: { color: BAND_COLOUR, opacity: alpha },
      data: list.map((b) => (b ? b.high - b.low : null)) },
  ];
  return {
    animation: false,
    textStyle: { color: view.text },
    grid: { left: 56, right: 16, top: 32, bottom: 28 },
    tooltip: { trigger: "axis", renderMode: "richText", formatter: (/** @type {any} */ params) => {
      const rows = Array.isArray(params) ? params : [params];
      if (!rows.length) return "";
      const i = rows[0].dataIndex;
      const point = daily.points[i];
      const b = bands[i];
      const text = point.texts[key];
      return [point.day, `${label}: ${text === null || text === undefined ? "–" : text}`,
        b ? `${view.words(b.personal ? "usual" : "usual-default")}: ${b.low_text} – ${b.high_text}` : "",
        point.day === marked ? typeLabel("routine_change") : ""]
        .filter(Boolean).join("\n");
    } },
    xAxis: { type: "category", data: days, boundaryGap: false,
      axisLabel: { ...axisText, hideOverlap: true } },
    yAxis: { type: "value", scale: true, name: label, nameTextStyle: { ...axisText, align: "left" },
      axisLabel: { ...axisText, formatter: format }, splitNumber: 4, splitLine: GRID_LINE },
    series: [
      ...band(own, "usual", view.words("usual"), 1),
      ...band(fallback, "default", view.words("usual-default"), 0.5),
      { type: "line", name: label, data: values, color: PANEL_COLOURS[1], connectNulls: false,
        showSymbol: true, symbolSize: 5,
        markLine: marked ? { silent: true, symbol: "none",
          lineStyle: { color: SEVERITY_COLOURS.warning, type: "dashed" },
          label: { color: view.text, formatter: typeLabel("routine_change") },
          data: [{ xAxis: marked.slice(5) }] } : undefined },
    ],
  };
}

/**
 * The day a routine-change alert marks on the chart of feature `key`: the day of that
 * feature's change (an open alert carries every feature that changed), else null.
 * @param {RoutineFocus | null} focus
 * @param {string} key
 * @returns {string | null}
 */
export function alertDay(focus, key) {
  if (!focus) return null;
  const change = (focus.changes || []).find((c) => c.feature === key);
  if (change) return change.day;
  return focus.feature === key ? focus.day : null;
}

/**
 * The features the routine-change alert carries, one button each saying its explanation
 * (in the page's language, from the server); pressing one shows that feature's chart with
 * its day marked. Hidden without an alert.
 * @param {HTMLElement} section
 * @param {RoutineFocus | null} focus
 */
function paintChanges(section, focus) {
  const list = section.querySelector(".daily-changes");
  if (!list) return;
  const changes = focus ? focus.changes || [] : [];
  /** @type {HTMLElement} */ (list).hidden = changes.length === 0;
  list.setAttribute("aria-label", typeLabel("routine_change"));
  const select = /** @type {HTMLSelectElement} */ (section.querySelector("select"));
  list.replaceChildren(...changes.map((c) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary daily-change";
    button.dataset.feature = c.feature;
    button.textContent = c.explanation;
    button.setAttribute("aria-pressed", String(c.feature === routine.feature));
    button.addEventListener("click", () => {
      routine.feature = c.feature;
      routine.chosen = true;
      if ([...select.options].some((o) => o.value === c.feature)) select.value = c.feature;
      drawDaily(section);
    });
    const item = document.createElement("li");
    item.append(button);
    return item;
  }));
}

/**
 * What the resident page's daily routine section shows now; `chosen`: the feature was
 * picked by hand (a routine-change alert's feature no longer overrides it).
 */
const routine = { id: 0, days: 30, feature: "", chosen: false, load: 0 };

/**
 * An <optgroup> of feature terms.
 * @param {string} label
 * @param {{value: string, label: string}[]} terms
 */
function featureGroup(label, terms) {
  const group = document.createElement("optgroup");
  group.label = label;
  for (const term of terms) {
    const option = document.createElement("option");
    option.value = term.value;
    option.textContent = term.label;
    group.append(option);
  }
  return group;
}

/**
 * Show the daily routine chart of a resident (the ledger entry): #daily-charts in
 * ledger.html; the feature selector lists the vocabulary's daily features, the person's
 * and, apart, the sensor's health. Opened from a routine-change alert (`?alert=ID`), or
 * when the resident has an active one, it starts on that alert's feature and marks its day.
 * @param {{id: number} | null} who null hides the section
 */
export function showDailyChart(who) {
  const section = document.getElementById("daily-charts");
  if (!section) return;
  section.hidden = who === null;
  if (!who) return;
  const select = /** @type {HTMLSelectElement} */ (section.querySelector("select"));
  if (!section.dataset.wired) {
    section.dataset.wired = "1";
    select.append(featureGroup(t("The resident"), vocabulary.daily_features || []));
    if ((vocabulary.device_features || []).length) {
      select.append(featureGroup(t("The sensor's health"), vocabulary.device_features || []));
    }
    select.addEventListener("change", () => {
      routine.feature = select.value;
      routine.chosen = true;
      drawDaily(section);
    });
    for (const button of section.querySelectorAll("button[data-days]")) {
      button.addEventListener("click", () => {
        routine.days = Number(/** @type {HTMLElement} */ (button).dataset.days);
        drawDaily(section);
      });
    }
  }
  if (who.id !== routine.id) {
    routine.id = who.id;
    const wanted = pageFor(who.id, "feature");  // the digest's link names the feature
    routine.chosen = wanted !== null && [...select.options].some((o) => o.value === wanted);
    if (routine.chosen) select.value = /** @type {string} */ (wanted);
    else select.selectedIndex = 0;
    routine.feature = select.value;
  }
  drawDaily(section);
}

/**
 * The last date shown: the date of the page's `?to=` (a fixed view), else the server's today.
 * @returns {string | null}
 */
function dailyUntil() {
  const given = (new URLSearchParams(window.location.search).get("to") || "").replace(" ", "+");
  return Number.isNaN(Date.parse(given)) ? null : given.slice(0, 10);
}

/**
 * A parameter of the page's address when the page was opened on resident `id`
 * (`/admin?resident=ID&alert=A` from a routine-change alert's card, `&feature=F` from the
 * daily digest), else null.
 * @param {number} id
 * @param {string} name
 * @returns {string | null}
 */
function pageFor(id, name) {
  const query = new URLSearchParams(window.location.search);
  return Number(query.get("resident")) === id ? query.get(name) : null;
}

/** The routine-change alert the page was opened on, if about the resident shown. */
function dailyAlert() {
  const alert = pageFor(routine.id, "alert");
  return alert && /^\d+$/.test(alert) ? alert : null;
}

/** @param {HTMLElement} section */
async function drawDaily(section) {
  const box = /** @type {HTMLElement} */ (section.querySelector(".daily-chart"));
  const message = /** @type {HTMLElement} */ (section.querySelector(".chart-message"));
  const select = /** @type {HTMLSelectElement} */ (section.querySelector("select"));
  const load = ++routine.load;
  box.dataset.state = "loading";
  for (const button of section.querySelectorAll("button[data-days]")) {
    button.setAttribute("aria-pressed",
      String(Number(/** @type {HTMLElement} */ (button).dataset.days) === routine.days));
  }
  try {
    const query = new URLSearchParams({ days: String(routine.days), lang });
    const until = dailyUntil();
    if (until) query.set("until", until);
    const alert = dailyAlert();
    if (alert) query.set("alert", alert);
    const [echarts, daily] = await Promise.all([loadECharts(),
      api(`/residents/${routine.id}/daily?${query}`)]);
    if (load !== routine.load) return;
    if (!echarts) {
      unavailable(box, message, chartWord("unavailable"));
      return;
    }
    /** @type {RoutineFocus | null} */
    const focus = daily.routine_change;
    if (focus && !routine.chosen && [...select.options].some((o) => o.value === focus.feature)) {
      routine.feature = focus.feature;
      select.value = focus.feature;
    }
    const any = daily.points.some((/** @type {DailyPoint} */ p) => p.covered);
    message.textContent = any ? "" : chartWord("no-data");
    chartIn(echarts, box).setOption(dailyOption(daily, routine.feature, { words: chartWord,
      text: getComputedStyle(box).color }), { notMerge: true });
    paintChanges(section, focus);
    box.dataset.state = "ready";
    box.dataset.feature = routine.feature;
    const day = alertDay(focus, routine.feature);
    if (day) box.dataset.alertDay = day;
    else delete box.dataset.alertDay;
  } catch (err) {
    if (load !== routine.load) return;
    box.dataset.state = "error";
    message.textContent = err instanceof Error ? err.message : String(err);
  }
}

// --- the family view ---------------------------------------------------------------------

/**
 * The options of the 7-night chart: hours in bed, times up at night, resting heart rate,
 * one small panel each, a bar or point per night.
 * @param {Night[]} nights oldest first
 * @param {{words: Words, text: string}} view
 * @returns {Option}
 */
export function weekOption(nights, view) {
  const days = nights.map((n) => n.day.slice(5));
  const panels = [
    { key: "chart-in-bed", type: "bar",
      data: nights.map((n) => n.time_in_bed_s === null ? null
        : Math.round(n.time_in_bed_s / 360) / 10) },
    { key: "chart-up", type: "bar", data: nights.map((n) => n.night_exits) },
    { key: "chart-hr", type: "line",
      data: nights.map((n) => n.resting_hr === undefined || n.resting_hr === null ? null
        : Math.round(n.resting_hr)) },
  ];
  const height = 100 / panels.length;
  const axisText = { color: view.text };
  return {
    animation: false,
    textStyle: { color: view.text },
    grid: panels.map((_, i) => ({ left: 36, right: 8, top: `${i * height + 9}%`,
      height: `${height - 17}%` })),
    xAxis: panels.map((_, i) => ({ type: "category", gridIndex: i, data: days,
      axisLabel: { ...axisText, show: i === panels.length - 1 } })),
    yAxis: panels.map((panel, i) => ({ type: "value", gridIndex: i, splitNumber: 2,
      minInterval: 1, scale: panel.type === "line", name: view.words(panel.key),
      nameTextStyle: { ...axisText, align: "left" }, axisLabel: axisText,
      splitLine: GRID_LINE })),
    series: panels.map((panel, i) => ({ type: /** @type {"bar" | "line"} */ (panel.type),
      name: view.words(panel.key), xAxisIndex: i, yAxisIndex: i, data: panel.data,
      color: PANEL_COLOURS[(i + 1) % PANEL_COLOURS.length],
      label: { show: true, position: "top", color: view.text }, connectNulls: false })),
  };
}

/**
 * Draw the 7-night chart of a family card into `box`.
 * @param {HTMLElement} box
 * @param {Night[]} nights oldest first
 * @param {Words} [words] the chart's words (by default its own, chartWord)
 */
export async function showWeekChart(box, nights, words = chartWord) {
  const echarts = await loadECharts();
  const message = /** @type {HTMLElement | null} */ (box.nextElementSibling);
  if (!echarts) {
    if (message) unavailable(box, message, words("chart-unavailable"));
    return;
  }
  chartIn(echarts, box).setOption(weekOption(nights, { words,
    text: getComputedStyle(box).color }), { notMerge: true });
  box.dataset.state = "ready";
}
