"""A script whose batch class lives in __main__: runs a pipeline on the engine named by argv[1], prints the sum."""
import sys

import numpy as np

from batchkit import ArrayBatch, B, Dataset, V, action, model


class MainBatch(ArrayBatch):
    components = ('x',)

    @model(mode='static')
    def table():
        return {'offset': 1000}

    @action
    def square(self):
        self.x = self.x ** 2
        return self

    @action(model='table')
    def shift(self, table):
        self.x = self.x + table['offset']
        return self


def main(engine: str) -> None:
    ds = Dataset(40, batch_class=MainBatch, preloaded={'x': np.arange(40)})
    p = ds.p.init_variable('sums', default=list).square().shift().update(V('sums', mode='a'), B('x').sum())
    if engine == 'threads':
        p.run(8, prefetch=2)
    elif engine == 'processes':
        p.run(8, prefetch=2, target='processes')
    else:
        import distributed
        cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None)
        with cluster, distributed.Client(cluster) as client:
            if engine == 'dask-executor':
                p.run(8, prefetch=2, executor=client.get_executor())
            else:
                p.run(8, prefetch=2, engine='dask', address=cluster.scheduler_address)
    print('total', int(sum(p.get_variable('sums'))))


if __name__ == '__main__':
    main(sys.argv[1])
