// graphql-ws publishes `graphql-ws/use/ws` through package.json "exports", which this project's
// moduleResolution ("node") does not read for types; Node resolves it at run time. The types are its own.
declare module 'graphql-ws/use/ws' {
  export * from 'graphql-ws/dist/use/ws';
}
