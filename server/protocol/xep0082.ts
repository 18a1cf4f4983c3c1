// XEP-0082 XMPP Date and Time Profiles (1.1.1): the formats delay stamps (XEP-0203), entity time
// (XEP-0202) and others put on the wire.

/** dateTime profile in UTC, whole seconds: '2006-12-19T17:58:35Z' (fractions are optional; old clients choke on them). */
export function dateTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** TZD: 'Z' for UTC, else ±hh:mm, for the local time zone at `date`. */
export function timeZoneOffset(date: Date): string {
  const minutesEast = -date.getTimezoneOffset();
  if (minutesEast === 0) return 'Z';
  const sign = minutesEast > 0 ? '+' : '-';
  const abs = Math.abs(minutesEast);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}
