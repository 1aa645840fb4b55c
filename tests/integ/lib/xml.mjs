// xml.mjs - a small, strict XML parser for comparing TwiML documents
// (twiml.test.mjs, voice.test.mjs).
//
// DESIGN: TwiML is a tiny XML subset (a declaration, elements, attributes,
// text), so 100 lines parse it without pulling in a dependency, and being
// strict is the point: anything a conforming XML 1.0 parser would reject -
// a raw '<' or an unknown entity in text or attributes, "]]>" in text, a
// character XML forbids, a duplicate attribute, a mismatched end tag,
// anything but whitespace after the root - throws, so a test fails on a
// document Twilio could not read.  What a conforming parser normalizes is
// normalized too (line ends to LF; TAB, LF, CR in attribute values to
// spaces; character references decoded after that), so two documents
// compare equal exactly when Twilio would see the same thing.  Comments,
// CDATA, processing instructions and DOCTYPE are not TwiML: they throw.
//
// parseXml(text) -> { version, encoding, root }, where an element is
// { name, attrs: {name: value}, children: [element | string] } with
// adjacent text merged and no empty strings.
//
// SPDX-License-Identifier: MIT

const NAME = /[A-Za-z_:][-A-Za-z0-9_.:]*/y;
// Characters XML 1.0 forbids (outside #x9 | #xA | #xD | #x20-#xD7FF |
// #xE000-#xFFFD | #x10000-#x10FFFF), lone surrogates included.
const FORBIDDEN = /[\0-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:^|[^\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const ENTITIES = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function fail(msg, i) {
	throw new Error(`XML: ${msg} at offset ${i}`);
}

// Decode entity and character references in s (raw text between markup).
function decode(s, at) {
	return s.replace(/&([^;]*);|&/g, (m, ref) => {
		if (ref === undefined)
			fail('bare &', at);
		if (ENTITIES[ref] !== undefined)
			return ENTITIES[ref];
		const num = /^#(?:x([0-9A-Fa-f]+)|([0-9]+))$/.exec(ref);
		if (!num)
			fail(`unknown entity &${ref};`, at);
		const cp = num[1] !== undefined ? parseInt(num[1], 16) : parseInt(num[2], 10);
		if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			fail(`bad character reference &${ref};`, at);
		const ch = String.fromCodePoint(cp);
		if (FORBIDDEN.test(ch))
			fail(`reference to a forbidden character &${ref};`, at);
		return ch;
	});
}

export function parseXml(input) {
	if (FORBIDDEN.test(input))
		fail('forbidden character', input.search(FORBIDDEN));
	const text = input.replace(/\r\n?/g, '\n');
	let i = 0;
	const out = { version: undefined, encoding: undefined, root: undefined };
	const decl = /^<\?xml\s+version\s*=\s*(["'])(1\.[0-9]+)\1(?:\s+encoding\s*=\s*(["'])([A-Za-z][-A-Za-z0-9._]*)\3)?(?:\s+standalone\s*=\s*(["'])(yes|no)\5)?\s*\?>/.exec(text);
	if (decl) {
		out.version = decl[2];
		out.encoding = decl[4];
		i = decl[0].length;
	}
	const ws = () => {
		while (i < text.length && ' \t\n'.includes(text[i]))
			i++;
	};
	const name = () => {
		NAME.lastIndex = i;
		const m = NAME.exec(text);
		if (!m)
			fail('name expected', i);
		i += m[0].length;
		return m[0];
	};
	function element() {
		if (text[i] !== '<')
			fail('< expected', i);
		i++;
		if ('!?/'.includes(text[i]))
			fail(`unsupported markup <${text[i]}`, i);
		const el = { name: name(), attrs: {}, children: [] };
		for (;;) {
			const before = i;
			ws();
			if (text.startsWith('/>', i)) {
				i += 2;
				return el;
			}
			if (text[i] === '>') {
				i++;
				break;
			}
			if (i === before)
				fail('whitespace expected before an attribute', i);
			const an = name();
			ws();
			if (text[i] !== '=')
				fail('= expected', i);
			i++;
			ws();
			const q = text[i];
			if (q !== '"' && q !== "'")
				fail('quoted attribute value expected', i);
			const close = text.indexOf(q, i + 1);
			if (close < 0)
				fail('unterminated attribute value', i);
			const raw = text.slice(i + 1, close);
			if (raw.includes('<'))
				fail('< in attribute value', i);
			if (Object.hasOwn(el.attrs, an))
				fail(`duplicate attribute ${an}`, i);
			el.attrs[an] = decode(raw.replace(/[\t\n]/g, ' '), i);
			i = close + 1;
		}
		for (;;) {
			const lt = text.indexOf('<', i);
			if (lt < 0)
				fail(`unclosed <${el.name}>`, i);
			const raw = text.slice(i, lt);
			if (raw.includes(']]>'))
				fail(']]> in text', i);
			const s = decode(raw, i);
			if (s !== '') {
				const last = el.children.length - 1;
				if (typeof el.children[last] === 'string')
					el.children[last] += s;
				else
					el.children.push(s);
			}
			i = lt;
			if (text.startsWith('</', i)) {
				i += 2;
				const end = name();
				ws();
				if (end !== el.name || text[i] !== '>')
					fail(`</${end}> does not close <${el.name}>`, i);
				i++;
				return el;
			}
			el.children.push(element());
		}
	}
	ws();
	out.root = element();
	ws();
	if (i !== text.length)
		fail('content after the root element', i);
	return out;
}

// Names of the elements in document order, as "Parent/Child" paths: the
// structure of a document without its text.
export function structure(node, prefix = '') {
	const here = prefix ? `${prefix}/${node.name}` : node.name;
	let out = [here];
	for (const c of node.children)
		if (typeof c !== 'string')
			out = out.concat(structure(c, here));
	return out;
}
