import { withoutInternalValue } from '../../../src/graphql/errors';

describe('withoutInternalValue', () => {
  const upload = '{ resolve: [function], reject: [function], promise: {}, file: [Object] }';

  it('leaves out a printed value that holds an upload, keeping the reason and the path', () => {
    expect(withoutInternalValue(`Variable "$i" got invalid value { a: "gw", file: ${upload} }; Field "a" is not defined by type "T".`)).toBe(
      'Variable "$i" got invalid value; Field "a" is not defined by type "T".',
    );
    expect(withoutInternalValue(`Variable "$i" got invalid value ${upload} at "i.file"; Expected type "Upload".`)).toBe(
      'Variable "$i" got invalid value at "i.file"; Expected type "Upload".',
    );
    // Quotes and brackets inside the client's own strings do not end the value early.
    expect(withoutInternalValue(`Variable "$i" got invalid value { a: "x; y at \\"z\\" }", b: ["]"], f: ${upload} }; Field "a" is bad.`)).toBe(
      'Variable "$i" got invalid value; Field "a" is bad.',
    );
  });

  it('keeps a value the client sent, and every other message, as they are', () => {
    for (const message of [
      'Variable "$n" got invalid value "x"; Int cannot represent non-integer value: "x"',
      'Variable "$i" got invalid value { name: "x", nmae: "y" }; Field "nmae" is not defined by type "PolicyCreateInput".',
      'Variable "$i" got invalid value { a: "[function] as text; really" }; Field "a" is bad.',
      'Cannot query field "nmae" on type "PolicyConnection".',
      'Variable "$i" got invalid value { unterminated',
    ])
      expect(withoutInternalValue(message)).toBe(message);
  });
});
