import Testing
@testable import TaskMesh

/// `Instant`, the module's monotonic clock reading, and the `Duration` conversions it rests on.
@Suite struct InstantTests {
    @Test func movesByDurationsAndMeasuresThem() {
        let t0 = Instant(nanoseconds: 1_000)
        #expect((t0 + .microseconds(3)).nanoseconds == 4_000)
        #expect((t0 - .nanoseconds(1_500)).nanoseconds == -500)
        #expect((t0 + .seconds(2)) - t0 == .seconds(2))
        #expect(t0.duration(to: t0 + .milliseconds(7)) == .milliseconds(7))
        #expect(t0 < t0 + .nanoseconds(1))
        var t = t0
        t += .nanoseconds(5)
        #expect(t.nanoseconds == 1_005)
    }

    @Test func saturatesInsteadOfOverflowing() {
        let late = Instant(nanoseconds: .max - 10)
        #expect((late + .seconds(1)).nanoseconds == .max)
        #expect((late + .seconds(Int64.max)).nanoseconds == .max)
        let early = Instant(nanoseconds: .min + 10)
        #expect((early - .seconds(1)).nanoseconds == .min)
        #expect(early.duration(to: late) == .nanoseconds(Int64.max))
        #expect(Duration.seconds(Int64.max).saturatingNanoseconds == .max)
        #expect(Duration.seconds(Int64.min).saturatingNanoseconds == .min)
    }

    @Test func durationConversionsMatchComponents() {
        for value: Int64 in [0, 1, 999, 1_000_000, 987_654_321_123, -1, -1_500_000, 86_400_000_000_000, 1 << 62] {
            let duration = Duration.nanoseconds(value) + Duration(attoseconds: value < 0 ? -17 : 17)
            #expect(duration.saturatingNanoseconds == value)
            let (seconds, attoseconds) = duration.components
            #expect(duration.milliseconds == seconds * 1000 + attoseconds / 1_000_000_000_000_000)
            #expect(duration.nanoseconds == Double(value))
        }
    }

    @Test func readsTheClockForwardAndConvertsToTheContinuousClock() {
        let a = Instant.current
        let b = Instant.current
        #expect(a <= b)
        let target = a + .seconds(30)
        let away = ContinuousClock.now.duration(to: target.continuous)
        #expect(away > .seconds(29) && away <= .seconds(30))
    }
}
