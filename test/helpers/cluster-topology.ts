/**
 * The "cluster" project of jest.ci.config.js: each of its files runs on a 3 + 3 Redis Cluster
 * (testTopology() reads SYNDICAST_TEST_REDIS when a file starts its Redis). Jest gives every test file
 * its own copy of process.env, so this reaches the file it runs before and nothing else.
 */
process.env['SYNDICAST_TEST_REDIS'] = 'cluster';
