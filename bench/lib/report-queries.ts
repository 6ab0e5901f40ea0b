/** The report queries the benches measure, as a dashboard, an analyst's full hitReport and a drill-down page send them. */

export const THREAT_FIELDS = `device { id nickname } internalIp ioc { id cidr } iocList { id name } matchedCidr severity category hits packets destinationPorts directions firstSeenAt lastSeenAt`;

export const DASHBOARD_QUERY = `query Dashboard($from: DateTimeISO!, $to: DateTimeISO!) {
  dashboard(from: $from, to: $to, timeZone: "UTC") {
    from to inboundHits outboundHits devices internalHosts
    topThreats { ${THREAT_FIELDS} }
    trend { start end hits inbound outbound }
  }
}`;

export const REPORT_QUERY = `query Report($filter: HitFilter!) {
  hitReport(filter: $filter) {
    from to
    totals { hits packets bytes internalHosts externalAddresses devices }
    byDirection { direction hits packets bytes }
    byIoc(first: 10) { ioc { id cidr } iocList { id name } matchedCidr severity category hits packets internalHosts firstSeenAt lastSeenAt }
    byIocList(first: 10) { iocList { id name severity } iocs hits packets internalHosts firstSeenAt lastSeenAt }
    byCategory { category hits packets internalHosts firstSeenAt lastSeenAt }
    bySeverity { severity hits packets internalHosts firstSeenAt lastSeenAt }
    byDevice(first: 10) { device { id nickname } iocs hits packets internalHosts firstSeenAt lastSeenAt }
    byInternalHost(first: 10) { device { id nickname } internalIp hits packets iocs worstSeverity firstSeenAt lastSeenAt }
    threats(first: 10) { ${THREAT_FIELDS} }
    timeline(bucket: DAY, timeZone: "UTC") { start end hits inbound outbound }
  }
}`;

/** One drill-down page of 100 hits with every field a table shows. */
export const HITS_QUERY = `query Hits($filter: HitFilter!, $after: String) {
  flowHits(filter: $filter, first: 100, after: $after) {
    edges { cursor node { id firstSeenAt lastSeenAt direction protocol internalIp internalPort externalIp externalPort destinationPort
      matchedSide matchedIp matchedCidr severity category packets bytes device { id nickname } iocList { id name } } }
    pageInfo { hasNextPage endCursor }
  }
}`;
