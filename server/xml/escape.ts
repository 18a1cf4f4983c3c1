// XML escaping for the serializer. Fast path: most text needs no escaping at all, and a regex
// test is much cheaper than building a new string. Carriage returns (and tabs/newlines inside
// attributes) are written as character references so that XML end-of-line and attribute-value
// normalisation on the receiving side gives back exactly what was sent.

const TEXT_SPECIAL = /[&<>\r]/;
const ATTR_SPECIAL = /[&<>'"\t\n\r]/;
const TEXT_REPLACE = /[&<>\r]/g;
const ATTR_REPLACE = /[&<>'"\t\n\r]/g;
const ENTITY: Record<string, string> = {
  '&': '&amp;', '<': '&lt;', '>': '&gt;', "'": '&apos;', '"': '&quot;', '\t': '&#9;', '\n': '&#10;', '\r': '&#13;',
};
const replace = (ch: string): string => ENTITY[ch]!;

export function escapeText(text: string): string {
  return TEXT_SPECIAL.test(text) ? text.replace(TEXT_REPLACE, replace) : text;
}

export function escapeAttr(value: string): string {
  return ATTR_SPECIAL.test(value) ? value.replace(ATTR_REPLACE, replace) : value;
}
