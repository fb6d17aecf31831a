import CoreMetrics
import MediaQueueEngine
import Prometheus

/// The process's metrics in Prometheus text format: a registry that swift-metrics handles write
/// into, named and described by `EngineMetrics.catalog`.
final class PrometheusExporter: Sendable {
    let registry = PrometheusCollectorRegistry()

    /// The factory the engine's metrics are made with.
    var factory: any MetricsFactory { CatalogFactory(registry: registry) }

    /// Every registered series, as `/metrics` answers.
    func render() -> [UInt8] {
        registry.emitToBuffer()
    }
}

/// swift-metrics handles backed by `registry`, each with the help text (and, for histograms, the
/// buckets) its catalog entry gives; swift-prometheus' own factory registers them without help,
/// which Prometheus' lint rejects.
private struct CatalogFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry

    private static let catalog = Dictionary(uniqueKeysWithValues: EngineMetrics.catalog.map { ($0.name, $0) })

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: Self.catalog[label]?.help ?? label)
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
        return registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets(label))
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets(label).map { .milliseconds($0 * 1000) })
    }

    private func buckets(_ label: String) -> [Double] {
        if case .histogram(let bounds)? = Self.catalog[label]?.kind { return bounds }
        return [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    }

    // Series stay registered for the life of the process.
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyMeter(_ handler: any MeterHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}
