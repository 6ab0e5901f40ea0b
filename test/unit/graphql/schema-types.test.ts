import { getNamedType, GraphQLInt, GraphQLSchema, GraphQLType, isInputObjectType, isInterfaceType, isObjectType, Kind } from 'graphql';
import { createSchema } from '../../../src/graphql/schema';
import { SafeInt } from '../../../src/common/graphql/safe-int.scalar';

const NUMERIC = new Set(['Int', 'Float', 'SafeInt']);

/** Every field and argument of the schema whose named type is a number: `Type.field` or `Type.field(arg)` with its type. */
function numericFields(schema: GraphQLSchema): Array<{ coordinate: string; name: string; type: string }> {
  const out: Array<{ coordinate: string; name: string; type: string }> = [];
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__')) continue;
    if (!isObjectType(type) && !isInterfaceType(type) && !isInputObjectType(type)) continue;
    for (const field of Object.values(type.getFields())) {
      const named = getNamedType(field.type as GraphQLType).name;
      if (NUMERIC.has(named)) out.push({ coordinate: `${type.name}.${field.name}`, name: field.name, type: named });
      for (const arg of 'args' in field ? field.args : []) {
        const argType = getNamedType(arg.type as GraphQLType).name;
        if (NUMERIC.has(argType)) out.push({ coordinate: `${type.name}.${field.name}(${arg.name})`, name: arg.name, type: argType });
      }
    }
  }
  return out;
}

describe('numbers in the schema', () => {
  let fields: ReturnType<typeof numericFields>;
  beforeAll(async () => {
    fields = numericFields(await createSchema());
  });

  it('are never Float (type-graphql types a bare number as Float: every number field names its type)', () => {
    expect(fields.filter((f) => f.type === 'Float').map((f) => f.coordinate)).toEqual([]);
  });

  it('are SafeInt for every byte and packet measure (they can pass 2^31)', () => {
    const measure = /bytes|packets|^size$/i;
    const wrong = fields.filter((f) => measure.test(f.name) !== (f.type === 'SafeInt')).map((f) => `${f.coordinate}: ${f.type}`);
    expect(wrong).toEqual([]);
  });

  it('have one type per measure: a field name is the same scalar in every type that carries it', () => {
    const types = new Map<string, Set<string>>();
    for (const f of fields) types.set(f.name, new Set([...(types.get(f.name) ?? []), f.type]));
    expect([...types].filter(([, t]) => t.size > 1).map(([name, t]) => `${name}: ${[...t].join(', ')}`)).toEqual([]);
  });
});

describe('SafeInt', () => {
  it('serializes what the drivers return as a JSON number, exactly', () => {
    expect(SafeInt.serialize(21_000_000_000)).toBe(21_000_000_000);
    // mysql2 returns SUM() as a DECIMAL string, and BIGINT past 2^53 as a string (supportBigNumbers)
    expect(SafeInt.serialize('21000000000')).toBe(21_000_000_000);
    expect(SafeInt.serialize(String(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => GraphQLInt.serialize(21_000_000_000)).toThrow(/32-bit/);
  });

  it('refuses a value it cannot carry exactly, rather than rounding it', () => {
    expect(() => SafeInt.serialize('9007199254740993')).toThrow(/unsafe integer/);
    expect(() => SafeInt.serialize(2 ** 53)).toThrow(/unsafe integer/);
    expect(() => SafeInt.serialize(1.5)).toThrow(/non-integer/);
    expect(() => SafeInt.serialize('12 MB')).toThrow(/non-integer/);
  });

  it('reads inputs past 2^31 (a file size), as a variable and as a literal', () => {
    expect(SafeInt.parseValue(3_000_000_000)).toBe(3_000_000_000);
    expect(SafeInt.parseLiteral({ kind: Kind.INT, value: '3000000000' }, {})).toBe(3_000_000_000);
    expect(() => GraphQLInt.parseValue(3_000_000_000)).toThrow(/32-bit/);
    expect(() => SafeInt.parseValue('3000000000')).toThrow(/non-integer/);
    expect(() => SafeInt.parseValue(1.5)).toThrow(/non-integer/);
  });
});
