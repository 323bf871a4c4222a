package dev.sparksft.train;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/** training_loss.png as LLaMA-Factory's plot_loss draws it: the raw loss and its smoothed curve by step. */
public final class LossPlot {
    private LossPlot() {}

    /** @param points (step, loss) pairs in step order */
    public static void write(Path png, List<double[]> points, String title) throws IOException {
        System.setProperty("java.awt.headless", "true");
        XYSeries raw = new XYSeries("original");
        XYSeries smooth = new XYSeries("smoothed");
        double[] smoothed = smooth(points.stream().mapToDouble(p -> p[1]).toArray());
        for (int i = 0; i < points.size(); i++) {
            raw.add(points.get(i)[0], points.get(i)[1]);
            smooth.add(points.get(i)[0], smoothed[i]);
        }
        XYSeriesCollection data = new XYSeriesCollection();
        data.addSeries(raw);
        data.addSeries(smooth);
        JFreeChart chart = ChartFactory.createXYLineChart(title, "step", "loss", data, PlotOrientation.VERTICAL,
                true, false, false);
        ChartUtils.saveChartAsPNG(png.toFile(), chart, 960, 600);
    }

    /** LLaMA-Factory's ploting.smooth: an exponential moving average whose weight grows with the series length. */
    static double[] smooth(double[] scalars) {
        if (scalars.length == 0) {
            return scalars;
        }
        double weight = 1.8 * (1 / (1 + Math.exp(-0.05 * scalars.length)) - 0.5);
        double[] out = new double[scalars.length];
        double last = scalars[0];
        for (int i = 0; i < scalars.length; i++) {
            last = last * weight + (1 - weight) * scalars[i];
            out[i] = last;
        }
        return out;
    }
}
